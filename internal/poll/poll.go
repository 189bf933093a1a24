// Package poll collects incidents: a scheduler claims due sources with leases, and a bounded
// pool of workers polls each one — list what changed since the cursor (minus an overlap),
// follow the pages, store each page and advance the cursor in one transaction — then releases
// the source with its next poll time (soon if it is busy, later if it is idle).
package poll

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/socsync/socsync/internal/graph"
	"github.com/socsync/socsync/internal/incident"
	"github.com/socsync/socsync/internal/ingest"
	"github.com/socsync/socsync/internal/sentinel"
	"github.com/socsync/socsync/internal/store"
	"github.com/socsync/socsync/internal/throttle"
)

// Page is one page of a source's changed incidents.
type Page struct {
	Items []incident.Observation
	Next  string // the next page's link; empty on the last page
	Bad   []BadItem
}

// BadItem is an incident of a page that could not be read; the rest of the page is stored.
type BadItem struct {
	ID  string
	Err error
}

// Fetcher lists a source's incidents changed since a time, page by page.
type Fetcher interface {
	ListChanged(ctx context.Context, since time.Time, next string) (Page, error)
	// Ascending reports whether pages come oldest change first, so that the cursor may advance
	// page by page; otherwise it advances only with the last page.
	Ascending() bool
}

// DetailFetcher is implemented by fetchers whose incidents come without their alerts and
// comments (Sentinel): those are fetched only when their count changed.
type DetailFetcher interface {
	Alerts(ctx context.Context, externalID string) ([]incident.ObservedAlert, error)
	Comments(ctx context.Context, externalID string) ([]incident.RemoteComment, error)
}

// progressing tells the poll's watchdog of every detail read that was answered: a page of 50
// Sentinel incidents whose alerts are all new is 50 reads before anything is stored.
type progressing struct {
	DetailFetcher
	progressed func()
}

func (p progressing) Alerts(ctx context.Context, externalID string) ([]incident.ObservedAlert, error) {
	a, err := p.DetailFetcher.Alerts(ctx, externalID)
	if err == nil {
		p.progressed()
	}
	return a, err
}

func (p progressing) Comments(ctx context.Context, externalID string) ([]incident.RemoteComment, error) {
	c, err := p.DetailFetcher.Comments(ctx, externalID)
	if err == nil {
		p.progressed()
	}
	return c, err
}

// Target is what the scheduler needs to poll one source.
type Target struct {
	Fetcher   Fetcher
	Source    ingest.Source
	Idle, Hot time.Duration
	// Resync is how often a poll re-reads everything instead of what changed (0: never).
	Resync time.Duration
	// AlertProducts, for a DetailFetcher source, are the products whose alerts the alert rules
	// follow: the alerts of incidents that have such alerts are re-read every AlertRefresh (a
	// few per poll), since Sentinel does not change an incident when one of them changes status.
	AlertProducts []string
	AlertRefresh  time.Duration
}

// alertRefreshPerPoll bounds the detail and alert re-reads of one poll. They spend the Sentinel
// read budget (100 per 5 minutes per subscription); a poll reads until the budget says no, and
// the rest waits for the next poll.
const alertRefreshPerPoll = 50

// Resolver gives the target of a stored source (its client, credentials and settings).
type Resolver func(src store.Source) (Target, error)

// result is the outcome of one poll.
type result struct {
	calls, changed   int
	changedIDs       []string
	detailsThrottled bool // the read budget held some detail reads back for later polls
}

// poll polls one leased source until its last page or an error, calling progressed after each
// page or detail it reads and each page it stores.
//
// A source listed oldest change first (Sentinel) is read page by page with a fresh query from
// the newest change time seen so far, not by following the offset-based next link: an incident
// that changes while the pages are read moves to the end of the list, and offset paging would
// then skip the one behind it — and the cursor would move past it. Re-reading from the newest
// time cannot skip anything; the boundary's incidents are re-read and change nothing. Only when
// a whole page shares one change time does it follow the next link.
//
// Incidents re-read at the boundary (the overlap window, or the first change time of the next
// query) whose version the seen set holds are skipped at once: they cost no detail read and no
// store write, make no new version and enqueue nothing. A full re-read skips nothing (it is
// there to repair what a version does not show), and a page of nothing new stores nothing —
// not even the cursor, unless it moved.
func (s *Scheduler) poll(ctx context.Context, l store.Lease, t Target, progressed func()) (result, error) {
	var res result
	cur, err := decodeCursor(l.Cursor)
	if err != nil {
		return res, err
	}
	since := cur.since(s.cfg.Overlap)
	resync := t.Resync > 0 && s.now().Sub(cur.Resynced) >= t.Resync
	if resync {
		since = time.Unix(0, 0).UTC()
	}
	seen := seenSet(maps.Clone(cur.Seen))
	if seen == nil {
		seen = seenSet{}
	}
	committed := l.Cursor // the cursor as stored
	next, newest := "", cur.Time
	var throttled error // a detail read the budget refused: reported once the pages are stored
	for page := 0; ; page++ {
		if page >= s.cfg.MaxPages {
			return res, fmt.Errorf("more than %d pages in one poll; the rest waits for the next poll", s.cfg.MaxPages)
		}
		p, err := t.Fetcher.ListChanged(ctx, since, next)
		res.calls++
		if err != nil {
			return res, err
		}
		progressed()
		for _, b := range p.Bad {
			s.log.Warn("unreadable incident skipped", "tenant", l.TenantID, "source", l.ID, "incident", b.ID, "err", b.Err)
		}
		fresh := p.Items
		if !resync {
			fresh = seen.unseen(p.Items)
		}
		if d, ok := t.Fetcher.(DetailFetcher); ok {
			n, err := s.fetchDetails(ctx, l, t, progressing{d, progressed}, fresh)
			res.calls += n
			switch {
			case errors.As(err, new(*throttle.Throttled)):
				throttled = err // the page is stored with the details flagged pending
			case err != nil:
				return res, err
			}
		}
		pageNewest := time.Time{}
		for _, o := range p.Items {
			if usableCursor(o, s.now()) && o.UpdatedAt.After(pageNewest) {
				pageNewest = o.UpdatedAt
			}
		}
		newest = maxTime(newest, pageNewest)
		last := p.Next == ""
		advance := last || t.Fetcher.Ascending()
		c := cursor{V: cursorVersion, Time: newest, Resynced: cur.Resynced}
		if resync && last {
			c.Resynced = s.now()
		}
		seen.add(fresh)
		c.Seen = seen.forCursor(c.since(s.cfg.Overlap))
		var ids []string
		if enc := c.encode(); len(fresh) > 0 || (advance && enc != committed) {
			if ids, err = s.store1Page(ctx, l, t, fresh, advance, c, progressed); err != nil {
				return res, err
			}
			if advance {
				committed = enc
			}
		}
		if s.Observed != nil {
			at := s.now()
			for _, o := range fresh {
				s.Observed(l.TenantID, o, at)
			}
		}
		res.changed += len(ids)
		res.changedIDs = append(res.changedIDs, ids...)
		switch {
		case last:
			if d, ok := t.Fetcher.(DetailFetcher); ok && throttled == nil {
				d := progressing{d, progressed}
				n, ids, err := s.refreshDetails(ctx, l, t, d)
				res.calls += n
				res.changedIDs = append(res.changedIDs, ids...)
				if err == nil && len(t.AlertProducts) > 0 {
					n, ids, err = s.refreshAlerts(ctx, l, t, d)
					res.calls += n
					res.changedIDs = append(res.changedIDs, ids...)
				}
				if errors.As(err, new(*throttle.Throttled)) {
					throttled = err
				} else if err != nil {
					return res, err
				}
			}
			// Detail reads the read budget refused are not a failure of the poll, nor a reason
			// to poll again early: the incidents are stored, and later polls fetch the rest at
			// the pace the budget allows.
			res.detailsThrottled = throttled != nil
			return res, nil
		case t.Fetcher.Ascending() && pageNewest.After(since):
			since, next = pageNewest, ""
		default:
			next = p.Next
		}
	}
}

// untrustedTimeFlags mark observations whose timestamps were odd: a change time in the future
// (the remote's clock runs ahead) or not in UTC (an offset, or none at all). Both clients flag
// alike.
var untrustedTimeFlags = []string{graph.FlagFutureTimestamp, graph.FlagNonUTCTimestamp,
	sentinel.FlagFutureTimestamp, sentinel.FlagNonUTCTimestamp}

// usableCursor reports whether an observation's change time may move a cursor: a flagged
// (future or non-UTC) timestamp is stored but never trusted as a cursor, nor is one beyond
// now plus five minutes.
func usableCursor(o incident.Observation, now time.Time) bool {
	for _, f := range untrustedTimeFlags {
		if slices.Contains(o.Flags, f) {
			return false
		}
	}
	return !o.UpdatedAt.After(now.Add(5 * time.Minute))
}

// store1Page stores a page's observations, fenced by the lease, and advances the cursor in the
// same transaction when advance is set, calling progressed after each incident and after the
// commit: storing a page of 50 on a loaded machine can take longer than the poll deadline,
// and is progress all along. Merged incidents go last, so that their targets in the same page
// exist first.
func (s *Scheduler) store1Page(ctx context.Context, l store.Lease, t Target, items []incident.Observation, advance bool, c cursor, progressed func()) ([]string, error) {
	ordered := slices.Clone(items)
	slices.SortStableFunc(ordered, func(a, b incident.Observation) int {
		return boolInt(a.Status == incident.StatusMerged) - boolInt(b.Status == incident.StatusMerged)
	})
	var changed []string
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		changed = changed[:0]
		if err := tx.Fence(ctx, l); err != nil {
			return err
		}
		for _, o := range ordered {
			r, err := s.ingest.Observe(ctx, tx, t.Source, o)
			if err != nil {
				return fmt.Errorf("incident %s: %w", o.ExternalID, err)
			}
			progressed()
			if r.Changed {
				changed = append(changed, r.IncidentID)
			}
		}
		if advance {
			return tx.AdvanceCursor(ctx, l, c.encode())
		}
		return nil
	})
	if err == nil {
		progressed()
	}
	return changed, err
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// flagDetailsPending marks an observation whose alerts or comments could not be fetched yet
// (the read budget ran out): it is stored all the same, so that the cursor moves on, and its
// details are fetched by a later poll (see refreshDetails).
const flagDetailsPending = "details-pending"

// flagAlertsCurrent marks a details-pending observation whose alerts were fetched (only its
// comments wait): a budget that refills one read at a time must not spend every read on the
// alerts again and never reach the comments.
const flagAlertsCurrent = "alerts-current"

// fetchDetails fetches alerts and comments of the page's incidents whose counts differ from
// what is stored, or whose details are still pending, and attaches them — except for mirrors of
// Defender incidents that Graph collects, whose alerts and comments come with them. When the read budget
// runs out it stops and flags the rest instead of failing the page: one busy workspace must not
// stall on its detail reads. It returns the calls made and the throttling that stopped it.
func (s *Scheduler) fetchDetails(ctx context.Context, l store.Lease, t Target, d DetailFetcher, items []incident.Observation) (int, error) {
	calls := 0
	var throttled error
	for i := range items {
		o := &items[i]
		if o.Mirrored && t.Source.DefenderPolled {
			continue // Graph brought this incident's alerts and comments with the Defender incident
		}
		prevAlerts, prevComments := -1, -1
		if link, err := s.store.LinkByExternal(ctx, l.TenantID, l.ID, o.ExternalID); err == nil {
			if prev, err := decodeObservation(link.Observed); err == nil {
				flags := strings.Split(link.Flags, ",")
				switch {
				case !slices.Contains(flags, flagDetailsPending):
					prevAlerts, prevComments = prev.AlertCount, prev.CommentCount
				case slices.Contains(flags, flagAlertsCurrent):
					prevAlerts = prev.AlertCount // only the comments wait
				}
			}
		} else if !errors.Is(err, store.ErrNotFound) {
			return calls, err
		}
		needAlerts := o.AlertCount > 0 && o.AlertCount != prevAlerts
		needComments := o.CommentCount > 0 && o.CommentCount != prevComments
		pending := func() {
			o.Flags = append(o.Flags, flagDetailsPending)
			if !needAlerts || o.Alerts != nil {
				o.Flags = append(o.Flags, flagAlertsCurrent)
			}
		}
		if throttled != nil {
			if needAlerts || needComments {
				pending()
			}
			continue
		}
		n, err := s.fetchOne(ctx, d, o, needAlerts, needComments)
		calls += n
		switch {
		case errors.As(err, new(*throttle.Throttled)):
			throttled = err
			pending()
		case err != nil:
			return calls, err
		}
	}
	return calls, throttled
}

// fetchOne fetches what an observation needs.
func (s *Scheduler) fetchOne(ctx context.Context, d DetailFetcher, o *incident.Observation, alerts, comments bool) (int, error) {
	calls := 0
	if alerts {
		a, err := d.Alerts(ctx, o.ExternalID)
		calls++
		if err != nil {
			return calls, fmt.Errorf("alerts of %s: %w", o.ExternalID, err)
		}
		o.Alerts = a
	}
	if comments {
		c, err := d.Comments(ctx, o.ExternalID)
		calls++
		if err != nil {
			return calls, fmt.Errorf("comments of %s: %w", o.ExternalID, err)
		}
		o.Comments = c
	}
	return calls, nil
}

// refreshDetails fetches, a few per poll, the details still pending of incidents that earlier
// pages stored without them, and stores them through ingest.
func (s *Scheduler) refreshDetails(ctx context.Context, l store.Lease, t Target, d DetailFetcher) (int, []string, error) {
	pending, err := s.store.LinksFlagged(ctx, l.TenantID, l.ID, flagDetailsPending, alertRefreshPerPoll)
	if err != nil || len(pending) == 0 {
		return 0, nil, err
	}
	calls := 0
	var changed []string
	for _, link := range pending {
		o, err := decodeObservation(link.Observed)
		if err != nil {
			return calls, changed, err
		}
		flags := strings.Split(link.Flags, ",")
		needAlerts := o.AlertCount > 0 && !slices.Contains(flags, flagAlertsCurrent)
		n, err := s.fetchOne(ctx, d, &o, needAlerts, o.CommentCount > 0)
		calls += n
		partial := errors.As(err, new(*throttle.Throttled)) && needAlerts && o.Alerts != nil
		if err != nil && !partial {
			return calls, changed, err
		}
		o.Raw = link.Raw
		o.Flags = slices.DeleteFunc(flags, func(f string) bool { return f == flagDetailsPending || f == flagAlertsCurrent || f == "" })
		if partial { // keep the alerts just read; the comments wait for the next poll
			o.Flags = append(o.Flags, flagDetailsPending, flagAlertsCurrent)
		}
		serr := s.store.InTx(ctx, func(tx *store.Tx) error {
			if err := tx.Fence(ctx, l); err != nil {
				return err
			}
			r, err := s.ingest.Observe(ctx, tx, t.Source, o)
			if err == nil && r.Changed {
				changed = append(changed, r.IncidentID)
			}
			return err
		})
		if serr != nil {
			return calls, changed, serr
		}
		if err != nil {
			return calls, changed, err
		}
	}
	return calls, changed, nil
}

// refreshAlerts re-reads the alerts of the incidents due for it and stores them, fenced by
// the lease. It returns the calls made and the incidents whose alerts changed.
func (s *Scheduler) refreshAlerts(ctx context.Context, l store.Lease, t Target, d DetailFetcher) (int, []string, error) {
	refresh := t.AlertRefresh
	if refresh <= 0 {
		refresh = 5 * time.Minute
	}
	// Closed incidents are followed for a day: long enough for an alert that reopens to bring
	// its incident back, without re-reading every closed incident for ever.
	due, err := s.store.AlertRefreshDue(ctx, l.TenantID, l.ID, t.AlertProducts, s.now().Add(-refresh), s.now().Add(-24*time.Hour), alertRefreshPerPoll)
	if err != nil {
		return 0, nil, err
	}
	calls := 0
	var changed []string
	for _, link := range due {
		alerts, err := d.Alerts(ctx, link.ExternalID)
		calls++
		if err != nil {
			return calls, changed, fmt.Errorf("alerts of %s: %w", link.ExternalID, err)
		}
		err = s.store.InTx(ctx, func(tx *store.Tx) error {
			if err := tx.Fence(ctx, l); err != nil {
				return err
			}
			c, err := s.ingest.StoreAlerts(ctx, tx, t.Source, link.IncidentID, alerts, s.now())
			if err != nil {
				return err
			}
			if c {
				changed = append(changed, link.IncidentID)
			}
			return tx.MarkAlertsChecked(ctx, l.TenantID, link.ID)
		})
		if err != nil {
			return calls, changed, err
		}
	}
	return calls, changed, nil
}

// nextPoll decides when a source is due again. A throttled source: when its budget allows. A
// failing one: at the hot interval once, then at the idle one. Otherwise the interval adapts to
// the source's activity: the hot interval after a poll that found several changes (a busy
// source), half the last interval after one that found a single change, twice the last one
// (up to the idle interval) after one that found none — so that a busy source is polled often
// at once and one that changes now and then stays cheap.
func nextPoll(now time.Time, t Target, src store.Source, res result, err error) time.Time {
	var th *throttle.Throttled
	switch {
	case errors.As(err, &th):
		return maxTime(th.NotBefore, now.Add(time.Second))
	case err != nil && src.LastError != "":
		return now.Add(t.Idle)
	case err != nil:
		return now.Add(t.Hot)
	}
	last := src.NextPoll.Sub(src.LastPoll) // the interval this poll was scheduled with
	if src.LastPoll.IsZero() || last <= 0 || last > t.Idle {
		last = t.Idle
	}
	// A poll asked for early ("poll now") shortened the last interval; it never makes the
	// source's interval shorter than hot, or it would then poll every few milliseconds, doubling.
	last = max(last, t.Hot)
	switch {
	case res.changed > 1:
		return now.Add(t.Hot)
	case res.changed == 1:
		return now.Add(max(t.Hot, last/2))
	}
	return now.Add(min(t.Idle, 2*last))
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func decodeObservation(b []byte) (incident.Observation, error) {
	var o incident.Observation
	err := json.Unmarshal(b, &o)
	return o, err
}
