// Package writeback is the reconciler: a work queue of hub incidents whose copies may disagree,
// and workers that plan each one (reconcile.Plan) and carry the plan out — a Graph PATCH with
// only the changed fields, a Sentinel GET-modify-PUT with the body etag, each comment written
// once per link — then record the new agreed state, the audit and the outbox in one
// transaction. It also handles remote merges and the alert → incident rules.
package writeback

import (
	"context"

	"github.com/socsync/socsync/internal/graph"
	"github.com/socsync/socsync/internal/incident"
	"github.com/socsync/socsync/internal/ingest"
	"github.com/socsync/socsync/internal/sentinel"
)

// GraphWriter is what the reconciler needs of a tenant's Graph client.
type GraphWriter interface {
	Get(ctx context.Context, id string) (incident.Observation, error)
	Update(ctx context.Context, id string, p graph.Patch) (incident.Observation, error)
	AddComment(ctx context.Context, id, text string) ([]incident.RemoteComment, error)
}

// SentinelWriter is what the reconciler needs of a workspace's Sentinel client.
type SentinelWriter interface {
	Get(ctx context.Context, name string) (incident.Observation, sentinel.Incident, error)
	Put(ctx context.Context, name string, inc sentinel.Incident) (incident.Observation, sentinel.Incident, error)
	Comments(ctx context.Context, name string) ([]incident.RemoteComment, error)
	PutComment(ctx context.Context, name, commentID, message string) (incident.RemoteComment, error)
}

// Remotes gives the reconciler its clients and each tenant's settings.
type Remotes interface {
	Graph(tenantID string) (GraphWriter, error)
	Sentinel(sourceID string) (SentinelWriter, error)
	// Source describes a source the way ingest needs it (owners, whether Defender is polled).
	Source(sourceID string) (ingest.Source, error)
}
