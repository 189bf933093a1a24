package httpapi

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/socsync/socsync/internal/store"
)

func TestReadyz_ReportsWhyTheHubIsNotReady(t *testing.T) {
	ctx := context.Background()
	open := func(t *testing.T, migrate bool) *store.Store {
		s, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "s.db"), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		if migrate {
			if _, err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
		}
		return s
	}
	tests := []struct {
		name     string
		store    func(t *testing.T) *store.Store
		status   int
		contains string
	}{
		{"ready", func(t *testing.T) *store.Store { return open(t, true) }, 200, `"ready"`},
		{"not migrated", func(t *testing.T) *store.Store { return open(t, false) }, 503, "database_not_migrated"},
		{"database closed", func(t *testing.T) *store.Store { s := open(t, true); s.Close(); return s }, 503, "database_unreachable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(Deps{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Store: tt.store(t), Metrics: prometheus.NewRegistry()})
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
			if rec.Code != tt.status || !strings.Contains(rec.Body.String(), tt.contains) {
				t.Errorf("/readyz = %d %s; want %d with %q", rec.Code, rec.Body, tt.status, tt.contains)
			}
			if got := rec.Header().Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type = %q", got)
			}
		})
	}
}
