package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/socsync/socsync/internal/store"
)

// testTextFilter: the text filter (the API's and the queue's q) finds incidents whose title
// holds the text, ignoring case; % and _ in the text are characters, not wildcards; the
// description and the remote ids are not searched.
func testTextFilter(t *testing.T, newDSN NewDSN) {
	ctx := context.Background()
	s := open(t, newDSN(t), NewClock())
	seed(t, s)
	titles := []string{"Disk 100% full on DC01", "Disk 100 GB free on DC01", "Run of svc_backup", "Run of svcXbackup",
		`Path C:\temp\x`, "Mimikatz on WS7"}
	ids := map[string]string{}
	for i, title := range titles {
		mustTx(t, s, func(tx *store.Tx) error {
			inc := newIncident(tenantA, title)
			inc.Description = "lateral movement with psexec"
			_, err := tx.CreateIncident(ctx, inc, fmt.Sprintf("graph:%d", 9000+i), store.Change{})
			ids[inc.ID] = title
			return err
		})
	}
	for _, c := range []struct {
		q    string
		want []string
	}{
		{"100%", []string{"Disk 100% full on DC01"}},
		{"svc_backup", []string{"Run of svc_backup"}},
		{`c:\temp`, []string{`Path C:\temp\x`}},
		{"MIMIKATZ", []string{"Mimikatz on WS7"}},
		{"disk 100", []string{"Disk 100% full on DC01", "Disk 100 GB free on DC01"}},
		{"psexec", nil}, // the description is not searched
		{"9005", nil},   // nor the remote ids
	} {
		list, err := s.ListIncidents(ctx, store.AllTenants(), store.ListFilter{Text: c.q}, store.ListPage{}, 100)
		if err != nil {
			t.Fatal(err)
		}
		queue, err := s.Queue(ctx, store.AllTenants(), store.ListFilter{Text: c.q}, store.QueueOrder{}, store.QueuePosition{}, 100)
		if err != nil {
			t.Fatal(err)
		}
		for what, got := range map[string][]store.StoredIncident{"ListIncidents": list, "Queue": queue} {
			var titles []string
			for _, si := range got {
				titles = append(titles, ids[si.ID])
			}
			slices.Sort(titles)
			want := slices.Sorted(slices.Values(c.want))
			if !slices.Equal(titles, want) {
				t.Errorf("%s q=%q: %q, want %q", what, c.q, titles, want)
			}
		}
	}
}
