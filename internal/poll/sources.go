package poll

import (
	"context"
	"time"

	"github.com/socsync/socsync/internal/graph"
	"github.com/socsync/socsync/internal/incident"
	"github.com/socsync/socsync/internal/sentinel"
)

// GraphFetcher polls a tenant's Defender XDR incidents through Microsoft Graph. Graph lists
// newest first (by creation), so the cursor advances with the last page.
type GraphFetcher struct{ Client *graph.Client }

// ListChanged lists one page of incidents changed since a time, with their alerts.
func (f GraphFetcher) ListChanged(ctx context.Context, since time.Time, next string) (Page, error) {
	p, err := f.Client.ListChanged(ctx, since, next)
	out := Page{Items: p.Incidents, Next: p.Next}
	for _, b := range p.Bad {
		out.Bad = append(out.Bad, BadItem{ID: b.ID, Err: b.Err})
	}
	return out, err
}

// Ascending is false: Graph pages newest first.
func (GraphFetcher) Ascending() bool { return false }

// SentinelFetcher polls one Sentinel workspace, oldest change first; alerts and comments are
// fetched only when their counts change.
type SentinelFetcher struct{ Client *sentinel.Client }

// ListChanged lists one page of incidents changed since a time.
func (f SentinelFetcher) ListChanged(ctx context.Context, since time.Time, next string) (Page, error) {
	p, err := f.Client.ListChanged(ctx, since, next)
	out := Page{Items: p.Incidents, Next: p.Next}
	for _, b := range p.Bad {
		out.Bad = append(out.Bad, BadItem{ID: b.ID, Err: b.Err})
	}
	return out, err
}

// Ascending is true: Sentinel pages oldest change first.
func (SentinelFetcher) Ascending() bool { return true }

// Alerts lists an incident's alerts.
func (f SentinelFetcher) Alerts(ctx context.Context, name string) ([]incident.ObservedAlert, error) {
	return f.Client.Alerts(ctx, name)
}

// Comments lists an incident's comments.
func (f SentinelFetcher) Comments(ctx context.Context, name string) ([]incident.RemoteComment, error) {
	return f.Client.Comments(ctx, name)
}
