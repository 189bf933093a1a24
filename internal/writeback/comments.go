package writeback

import (
	"context"
	"crypto/sha1"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/socsync/socsync/internal/incident"
	"github.com/socsync/socsync/internal/ingest"
	"github.com/socsync/socsync/internal/reconcile"
	"github.com/socsync/socsync/internal/store"
)

// remoteText is the comment as written to a remote: the text, who wrote it in the hub, and
// the marker.
func remoteText(c incident.Comment) string {
	return fmt.Sprintf("%s\n\n— %s via socsync %s", c.Text, c.Author, incident.CommentMarker(c.ID))
}

// sentinelCommentID is the comment id socsync writes a hub comment under on a Sentinel link:
// derived from the comment and the link, so that a replayed PUT rewrites the same comment.
func sentinelCommentID(commentID string, linkID int64) string {
	return uuid.NewHash(sha1.New(), uuid.NameSpaceOID, []byte(fmt.Sprintf("socsync/%s/%d", commentID, linkID)), 5).String()
}

// writeComments writes every comment not yet on a writable link to it, once: hub comments to
// every link, remote comments to links of the other system (never back to their origin).
func (e *Engine) writeComments(ctx context.Context, si store.StoredIncident, links []reconcile.LinkState, src ingest.Source) error {
	comments, err := e.store.Comments(ctx, si.TenantID, si.ID)
	if err != nil || len(comments) == 0 {
		return err
	}
	written := map[string]bool{}
	onLinks, err := e.store.CommentsOnLinks(ctx, si.TenantID, si.ID)
	if err != nil {
		return err
	}
	for _, c := range onLinks {
		if c.State == "written" {
			written[fmt.Sprintf("%s/%d", c.CommentID, c.LinkID)] = true
		}
	}
	for _, l := range links {
		if !l.Writable(src.DefenderPolled) {
			continue
		}
		var graphSeen []incident.RemoteComment // the Graph incident's comments, read once
		for _, c := range comments {
			if written[fmt.Sprintf("%s/%d", c.ID, l.ID)] || sameSystem(c.Origin, l.Kind) {
				continue
			}
			remoteID, err := e.writeComment(ctx, l, c, &graphSeen)
			if err != nil {
				return fmt.Errorf("comment %s to %s: %w", c.ID, l.PlanID(), err)
			}
			err = e.store.InTx(ctx, func(tx *store.Tx) error {
				if err := tx.SetCommentOnLink(ctx, si.TenantID, store.CommentOnLink{CommentID: c.ID, LinkID: l.ID, RemoteID: remoteID, State: "written"}); err != nil {
					return err
				}
				return tx.Audit(ctx, store.AuditEntry{TenantID: si.TenantID, IncidentID: si.ID, Actor: "socsync", Action: "comment-write-back",
					Link: l.PlanID(), After: c.ID, Result: "ok"})
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

func sameSystem(origin incident.CommentOrigin, kind store.LinkKind) bool {
	return (origin == incident.OriginGraph && kind == store.LinkGraph) || (origin == incident.OriginSentinel && kind == store.LinkSentinel)
}

// writeComment writes one comment to one link and returns its identity there.
func (e *Engine) writeComment(ctx context.Context, l reconcile.LinkState, c incident.Comment, graphSeen *[]incident.RemoteComment) (string, error) {
	text := remoteText(c)
	switch l.Kind {
	case store.LinkSentinel:
		s, err := e.remotes.Sentinel(l.SourceID)
		if err != nil {
			return "", err
		}
		id := sentinelCommentID(c.ID, l.ID)
		if _, err := s.PutComment(ctx, l.ExternalID, id, text); err != nil {
			return "", err
		}
		e.metrics.comments.WithLabelValues("sentinel").Inc()
		return id, nil
	case store.LinkGraph:
		g, err := e.remotes.Graph(l.TenantID)
		if err != nil {
			return "", err
		}
		if *graphSeen == nil {
			obs, err := g.Get(ctx, l.ExternalID)
			if err != nil {
				return "", err
			}
			*graphSeen = append([]incident.RemoteComment{}, obs.Comments...)
		}
		ref := incident.CommentRef(c.ID)
		for _, rc := range *graphSeen {
			if r, ok := incident.CommentRefOf(rc.Text); ok && r == ref {
				return "", nil // written before its record was: do not write it twice
			}
		}
		list, err := g.AddComment(ctx, l.ExternalID, text)
		if err != nil {
			return "", err
		}
		*graphSeen = list
		e.metrics.comments.WithLabelValues("graph").Inc()
		return "", nil
	}
	return "", errors.New("no comments on this kind of link")
}
