package reconcile

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/socsync/socsync/internal/incident"
)

var (
	t0 = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	t1 = t0.Add(time.Minute)
	t2 = t0.Add(2 * time.Minute)
)

func fields(status incident.Status, sev incident.Severity, owner string, tags ...string) incident.Fields {
	return incident.Fields{Status: status, Severity: sev, Owner: owner, Tags: tags}
}

func ptr(f incident.Fields) *incident.Fields { return &f }

func TestPlan_Scenarios(t *testing.T) {
	agreed := fields(incident.StatusNew, incident.SeverityMedium, "ana@contoso.com", "phish")
	with := func(mod func(*incident.Fields)) incident.Fields {
		f := agreed
		f.Tags = slices.Clone(agreed.Tags)
		mod(&f)
		return f
	}
	tests := []struct {
		name          string
		in            Input
		wantHub       incident.Fields
		wantWrites    map[string][]Field
		wantConflicts int
		wantInbound   int
	}{
		{
			name:       "in sync plans nothing",
			in:         Input{Hub: agreed, Links: []Link{{ID: "graph:1", System: incident.Graph, Base: ptr(agreed), Observed: agreed}}},
			wantHub:    agreed,
			wantWrites: map[string][]Field{},
		},
		{
			name: "hub edit flows to every writable link, not the read-only mirror",
			in: Input{Hub: with(func(f *incident.Fields) {
				f.Status = incident.StatusResolved
				f.Classification = incident.ClassificationTruePositive
			}),
				Links: []Link{
					{ID: "graph:1", System: incident.Graph, Base: ptr(agreed), Observed: agreed},
					{ID: "sentinel:a", System: incident.Sentinel, Base: ptr(agreed), Observed: agreed, ReadOnly: true},
				}},
			wantHub: with(func(f *incident.Fields) {
				f.Status = incident.StatusResolved
				f.Classification = incident.ClassificationTruePositive
			}),
			wantWrites: map[string][]Field{"graph:1": {FieldStatus, FieldClassification}},
		},
		{
			name: "remote edit flows into the hub and on to the other links",
			in: Input{Hub: agreed, Links: []Link{
				{ID: "graph:1", System: incident.Graph, Base: ptr(agreed), Observed: with(func(f *incident.Fields) { f.Severity = incident.SeverityHigh }), ChangedAt: t1},
				{ID: "sentinel:a", System: incident.Sentinel, Base: ptr(agreed), Observed: agreed},
			}},
			wantHub:     with(func(f *incident.Fields) { f.Severity = incident.SeverityHigh }),
			wantWrites:  map[string][]Field{"sentinel:a": {FieldSeverity}},
			wantInbound: 1,
		},
		{
			name: "different fields changed on two sides both survive",
			in: Input{Hub: with(func(f *incident.Fields) { f.Owner = "bob@contoso.com" }), HubChangedAt: t1, Links: []Link{
				{ID: "graph:1", System: incident.Graph, Base: ptr(agreed), Observed: with(func(f *incident.Fields) { f.Severity = incident.SeverityLow }), ChangedAt: t2},
			}},
			wantHub:     with(func(f *incident.Fields) { f.Owner = "bob@contoso.com"; f.Severity = incident.SeverityLow }),
			wantWrites:  map[string][]Field{"graph:1": {FieldOwner}},
			wantInbound: 1,
		},
		{
			name: "same field, latest wins: the later remote change",
			in: Input{Hub: with(func(f *incident.Fields) { f.Severity = incident.SeverityHigh }), HubChangedAt: t1, Links: []Link{
				{ID: "graph:1", System: incident.Graph, Base: ptr(agreed), Observed: with(func(f *incident.Fields) { f.Severity = incident.SeverityLow }), ChangedAt: t2},
			}},
			wantHub:       with(func(f *incident.Fields) { f.Severity = incident.SeverityLow }),
			wantWrites:    map[string][]Field{},
			wantConflicts: 1, wantInbound: 1,
		},
		{
			name: "same field, latest wins: a tie goes to the hub",
			in: Input{Hub: with(func(f *incident.Fields) { f.Severity = incident.SeverityHigh }), HubChangedAt: t1, Links: []Link{
				{ID: "graph:1", System: incident.Graph, Base: ptr(agreed), Observed: with(func(f *incident.Fields) { f.Severity = incident.SeverityLow }), ChangedAt: t1},
			}},
			wantHub:       with(func(f *incident.Fields) { f.Severity = incident.SeverityHigh }),
			wantWrites:    map[string][]Field{"graph:1": {FieldSeverity}},
			wantConflicts: 1,
		},
		{
			name: "same field, hub wins by policy",
			in: Input{Hub: with(func(f *incident.Fields) { f.Severity = incident.SeverityHigh }), HubChangedAt: t0,
				Policy: Policy{Default: LatestWins, Fields: map[Field]Rule{FieldSeverity: HubWins}},
				Links:  []Link{{ID: "graph:1", System: incident.Graph, Base: ptr(agreed), Observed: with(func(f *incident.Fields) { f.Severity = incident.SeverityLow }), ChangedAt: t2}}},
			wantHub:       with(func(f *incident.Fields) { f.Severity = incident.SeverityHigh }),
			wantWrites:    map[string][]Field{"graph:1": {FieldSeverity}},
			wantConflicts: 1,
		},
		{
			name: "echo of socsync's own write in another spelling plans nothing",
			in: Input{Hub: with(func(f *incident.Fields) {
				f.Status = incident.StatusActive
				f.Tags = []string{"Phish", "apt"}
				f.Owner = "Ana@Contoso.com"
				f.ClassificationComment = "seen  before"
			}), Links: []Link{{ID: "graph:1", System: incident.Graph,
				Base: ptr(with(func(f *incident.Fields) {
					f.Status = incident.StatusActive
					f.Tags = []string{"phish", "APT"}
					f.ClassificationComment = "seen before"
				})),
				Observed: with(func(f *incident.Fields) {
					f.Status = incident.StatusInProgress
					f.Tags = []string{" apt", "PHISH"}
					f.ClassificationComment = "seen before "
				}),
			}}},
			wantHub: with(func(f *incident.Fields) {
				f.Status = incident.StatusActive
				f.Tags = []string{"Phish", "apt"}
				f.Owner = "Ana@Contoso.com"
				f.ClassificationComment = "seen  before"
			}),
			wantWrites: map[string][]Field{},
		},
		{
			name: "a merged incident takes nothing in and writes nothing",
			in: Input{Hub: with(func(f *incident.Fields) { f.Status = incident.StatusMerged }), Links: []Link{
				{ID: "graph:1", System: incident.Graph, Base: ptr(agreed), Observed: with(func(f *incident.Fields) { f.Status = incident.StatusInProgress }), ChangedAt: t2},
			}},
			wantHub:    with(func(f *incident.Fields) { f.Status = incident.StatusMerged }),
			wantWrites: map[string][]Field{},
		},
		{
			name: "an owner Sentinel cannot name is skipped, not cleared",
			in: Input{Hub: with(func(f *incident.Fields) { f.Owner = "nobody-mapped@contoso.com" }), Links: []Link{
				{ID: "sentinel:a", System: incident.Sentinel, Base: ptr(agreed), Observed: agreed},
			}},
			wantHub:    with(func(f *incident.Fields) { f.Owner = "nobody-mapped@contoso.com" }),
			wantWrites: map[string][]Field{},
		},
		{
			name: "a foreign Graph status is never written to Sentinel",
			in: Input{Hub: agreed, Links: []Link{
				{ID: "graph:1", System: incident.Graph, Base: ptr(agreed), Observed: with(func(f *incident.Fields) { f.Status = "graph:awaitingAction" }), ChangedAt: t1},
				{ID: "sentinel:a", System: incident.Sentinel, Base: ptr(agreed), Observed: agreed},
			}},
			wantHub:     with(func(f *incident.Fields) { f.Status = "graph:awaitingAction" }),
			wantWrites:  map[string][]Field{},
			wantInbound: 1,
		},
		{
			name: "two remotes change one field differently: the later wins, recorded",
			in: Input{Hub: agreed, Links: []Link{
				{ID: "graph:1", System: incident.Graph, Base: ptr(agreed), Observed: with(func(f *incident.Fields) { f.Severity = incident.SeverityLow }), ChangedAt: t2},
				{ID: "sentinel:a", System: incident.Sentinel, Base: ptr(agreed), Observed: with(func(f *incident.Fields) { f.Severity = incident.SeverityHigh }), ChangedAt: t1},
			}},
			wantHub:       with(func(f *incident.Fields) { f.Severity = incident.SeverityLow }),
			wantWrites:    map[string][]Field{"sentinel:a": {FieldSeverity}},
			wantConflicts: 1, wantInbound: 1,
		},
		{
			name: "an empty hub refinement leaves the remote's reason standing",
			in: Input{Hub: with(func(f *incident.Fields) {
				f.Status = incident.StatusResolved
				f.Classification = incident.ClassificationTruePositive
			}), Links: []Link{
				{ID: "sentinel:a", System: incident.Sentinel,
					Base: ptr(with(func(f *incident.Fields) {
						f.Status = incident.StatusResolved
						f.Classification = incident.ClassificationTruePositive
					})),
					Observed: with(func(f *incident.Fields) {
						f.Status = incident.StatusResolved
						f.Classification = incident.ClassificationTruePositive
						f.ClassificationReason = incident.ReasonSuspiciousActivity
					})},
			}},
			wantHub: with(func(f *incident.Fields) {
				f.Status = incident.StatusResolved
				f.Classification = incident.ClassificationTruePositive
				f.ClassificationReason = incident.ReasonSuspiciousActivity
			}),
			wantWrites:  map[string][]Field{},
			wantInbound: 1,
		},
		{
			// Found by the soak (chaos R22): the reason was kept, then written back for ever to a
			// Sentinel that refuses a reason without a classification.
			name: "a classification cleared remotely takes the refinements it had with it",
			in: Input{Hub: with(func(f *incident.Fields) {
				f.Classification = incident.ClassificationTruePositive
				f.ClassificationReason = incident.ReasonSuspiciousActivity
				f.Determination = incident.DeterminationMalware
			}), Links: []Link{
				{ID: "sentinel:a", System: incident.Sentinel,
					Base: ptr(with(func(f *incident.Fields) {
						f.Classification = incident.ClassificationTruePositive
						f.ClassificationReason = incident.ReasonSuspiciousActivity
					})),
					Observed: agreed, ChangedAt: t1},
			}},
			wantHub:     agreed,
			wantWrites:  map[string][]Field{},
			wantInbound: 3,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Plan(tt.in)
			if !reflect.DeepEqual(normal(got.Hub), normal(tt.wantHub)) {
				t.Errorf("hub = %+v\nwant  %+v", got.Hub, tt.wantHub)
			}
			writes := map[string][]Field{}
			for _, w := range got.Writes {
				writes[w.Link] = w.Fields
			}
			if !reflect.DeepEqual(writes, tt.wantWrites) {
				t.Errorf("writes = %v, want %v", writes, tt.wantWrites)
			}
			if len(got.Conflicts) != tt.wantConflicts {
				t.Errorf("conflicts = %v, want %d", got.Conflicts, tt.wantConflicts)
			}
			if len(got.Inbound) != tt.wantInbound {
				t.Errorf("inbound = %v, want %d", got.Inbound, tt.wantInbound)
			}
			again := Plan(apply(tt.in, got))
			if !again.Empty() {
				t.Errorf("re-planning after applying is not empty: %+v", again)
			}
		})
	}
}

func normal(f incident.Fields) incident.Fields {
	f.Tags = incident.NormalizeTags(f.Tags)
	if len(f.Tags) == 0 {
		f.Tags = nil
	}
	return f
}

// readBack is what a remote returns for a value socsync wrote: its own spelling of it, read
// through the mapping tables (hub "active" written to Graph comes back as "in_progress"), with
// tags and text as remotes have been seen to rewrite them.
func readBack(sys incident.System, v incident.Fields) incident.Fields {
	out := v
	if sys == incident.Graph {
		r, _ := incident.GraphStatus.ToRemote(v.Status)
		out.Status, _ = incident.GraphStatus.FromRemote(r)
	} else {
		r, _ := incident.SentinelStatus.ToRemote(v.Status)
		out.Status, _ = incident.SentinelStatus.FromRemote(r)
	}
	out.Tags = incident.NormalizeTags(v.Tags)
	slices.Reverse(out.Tags)
	out.ClassificationComment = " " + v.ClassificationComment
	return out
}

// apply simulates a plan's outcome: the hub takes its new fields; each link's written fields
// come back in the remote's spelling; every link records its new base.
func apply(in Input, p Result) Input {
	out := in
	out.Hub = p.Hub
	out.Links = nil
	for _, l := range in.Links {
		if w, ok := p.WriteFor(l.ID); ok {
			back := readBack(l.System, w.Values)
			for _, f := range w.Fields {
				set(&l.Observed, back, f)
			}
		}
		base := p.Bases[l.ID]
		l.Base = &base
		out.Links = append(out.Links, l)
	}
	return out
}

// rules are the policy rules, for inputs that pick them.
var rules = []Rule{LatestWins, HubWins, RemoteWins}

// policyOf decodes a policy from bits: the lowest two pick the default rule (the fourth value
// leaves it unset, which means latest_wins), then two bits per synced field, in Fields order,
// pick its own rule (the fourth value leaves it to the default).
func policyOf(bits uint32) Policy {
	p := Policy{Fields: map[Field]Rule{}}
	if r := bits & 3; r < 3 {
		p.Default = rules[r]
	}
	for i, f := range Fields {
		if r := bits >> (2 + 2*i) & 3; r < 3 {
			p.Fields[f] = rules[r]
		}
	}
	return p
}

// randomInput builds an input from a random source: values from small domains, so that equal,
// equivalent and conflicting values all occur often, and a policy with a random default and
// random rules for some fields.
func randomInput(r *rand.Rand) Input {
	in := randomInputWith(r, policyOf(r.Uint32()))
	return in
}

// randomInputWith builds a random input (see randomInput) decided by the given policy.
func randomInputWith(r *rand.Rand, policy Policy) Input {
	statuses := []incident.Status{incident.StatusNew, incident.StatusActive, incident.StatusInProgress, incident.StatusResolved, incident.StatusMerged, "graph:awaitingAction", "sentinel:Weird"}
	sevs := []incident.Severity{incident.SeverityLow, incident.SeverityHigh, "graph:unknown", ""}
	owners := []string{"", "ana@contoso.com", "ANA@contoso.com ", "bob@contoso.com", "sentinel:1234"}
	classes := []incident.Classification{"", incident.ClassificationTruePositive, incident.ClassificationFalsePositive}
	dets := []incident.Determination{"", incident.DeterminationMalware, incident.DeterminationOther}
	reasons := []incident.ClassificationReason{"", incident.ReasonSuspiciousActivity, incident.ReasonInaccurateData}
	comments := []string{"", "done", " done  ", "other"}
	tagsets := [][]string{nil, {"a"}, {"A", "b"}, {"b", "a "}, {"c"}}
	pick := func() incident.Fields {
		return incident.Fields{Status: statuses[r.IntN(len(statuses))], Severity: sevs[r.IntN(len(sevs))],
			Owner: owners[r.IntN(len(owners))], Classification: classes[r.IntN(len(classes))],
			Determination: dets[r.IntN(len(dets))], ClassificationReason: reasons[r.IntN(len(reasons))],
			ClassificationComment: comments[r.IntN(len(comments))], Tags: tagsets[r.IntN(len(tagsets))]}
	}
	owners2, _ := incident.NewOwners(map[string]string{"ana@contoso.com": "aaaa", "bob@contoso.com": "bbbb"})
	times := []time.Time{t0, t1, t2}
	in := Input{Hub: pick(), HubChangedAt: times[r.IntN(3)], Policy: policy}
	for i := range 1 + r.IntN(3) {
		sys := incident.Graph
		if r.IntN(2) == 0 {
			sys = incident.Sentinel
		}
		l := Link{ID: string(sys) + ":" + string(rune('a'+i)), System: sys, Observed: pick(), ChangedAt: times[r.IntN(3)],
			ReadOnly: r.IntN(4) == 0, Owners: owners2}
		if r.IntN(5) > 0 {
			b := pick()
			if r.IntN(2) == 0 {
				b = l.Observed
			}
			l.Base = &b
		}
		in.Links = append(in.Links, l)
	}
	return in
}

// checkPlanProperties checks the planner's properties on one input: identical inputs (in any
// link order) give identical plans; no plan writes a value equal to the observed one, or to a
// read-only link; re-planning after applying the plan (its writes succeeded) yields an empty
// plan; and re-planning after its writes failed (the links' pending bases recorded) takes
// nothing more in and plans the same writes.
func checkPlanProperties(t *testing.T, in Input) {
	t.Helper()
	p := Plan(in)

	shuffled := in
	shuffled.Links = slices.Clone(in.Links)
	slices.Reverse(shuffled.Links)
	if a, b := mustJSON(t, p), mustJSON(t, Plan(shuffled)); a != b {
		t.Fatalf("plans differ for the same input %s:\n%s\n%s", mustJSON(t, in), a, b)
	}
	for _, w := range p.Writes {
		for _, l := range in.Links {
			if l.ID != w.Link {
				continue
			}
			for _, fld := range w.Fields {
				if equal(l.System, fld, w.Values, l.Observed) {
					t.Fatalf("write of %s to %s equals the observed value %q (input %s)", fld, l.ID, value(l.Observed, fld), mustJSON(t, in))
				}
				if l.ReadOnly {
					t.Fatalf("write to read-only link %s (input %s)", l.ID, mustJSON(t, in))
				}
			}
		}
	}
	if again := Plan(apply(in, p)); !again.Empty() {
		t.Fatalf("re-plan not empty:\ninput %s\nplan %s\nagain %s", mustJSON(t, in), mustJSON(t, p), mustJSON(t, again))
	}
	failed := in
	failed.Hub, failed.Links = p.Hub, nil
	for _, l := range in.Links {
		if b, ok := p.PendingBases[l.ID]; ok {
			l.Base = &b
		} else if _, writes := p.WriteFor(l.ID); !writes {
			b := p.Bases[l.ID]
			l.Base = &b
		}
		failed.Links = append(failed.Links, l)
	}
	retry := Plan(failed)
	if len(retry.Inbound) != 0 || mustJSON(t, retry.Writes) != mustJSON(t, p.Writes) {
		t.Fatalf("re-plan after failed writes differs:\ninput %s\nplan %s\nretry %s", mustJSON(t, in), mustJSON(t, p), mustJSON(t, retry))
	}
}

// FuzzPlan fuzzes the planner's properties (checkPlanProperties) over random inputs (the seeds)
// decided by any policy: a default rule and a rule per field (the bits, see policyOf).
func FuzzPlan(f *testing.F) {
	for i := range uint64(20) {
		f.Add(i, i*7, uint32(i*0x9e3779b9))
	}
	f.Add(uint64(1), uint64(2), uint32(0))           // latest_wins everywhere
	f.Add(uint64(1), uint64(2), uint32(0x5555_5555)) // hub_wins everywhere
	f.Add(uint64(1), uint64(2), uint32(0xaaaa_aaaa)) // remote_wins everywhere
	f.Fuzz(func(t *testing.T, s1, s2 uint64, policy uint32) {
		checkPlanProperties(t, randomInputWith(rand.New(rand.NewPCG(s1, s2)), policyOf(policy)))
	})
}

// TestPlan_PropertiesHoldOverRandomInputs runs the fuzz properties (checkPlanProperties) over
// 5,000 inputs from a seeded generator, every policy mix included, so that every CI run checks
// them broadly, not only the fuzz step's short run.
func TestPlan_PropertiesHoldOverRandomInputs(t *testing.T) {
	const runs = 5000
	r := rand.New(rand.NewPCG(0x5eed, 2026))
	var writes, inbound, conflicts, perField int
	for range runs {
		in := randomInput(r)
		perField += len(in.Policy.Fields)
		p := Plan(in)
		writes, inbound, conflicts = writes+len(p.Writes), inbound+len(p.Inbound), conflicts+len(p.Conflicts)
		checkPlanProperties(t, in)
	}
	// The generator must exercise what the properties are about.
	if writes < runs/4 || inbound < runs/4 || conflicts < runs/10 || perField < runs {
		t.Errorf("the inputs planned %d writes, %d changes taken in, %d conflicts, with %d per-field rules: too few to check the properties broadly",
			writes, inbound, conflicts, perField)
	}
	t.Logf("%d random inputs: %d writes, %d changes taken in, %d conflicts, %d per-field rules", runs, writes, inbound, conflicts, perField)
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestPlan_DeterministicOverRandomRuns (chaos R14): 1,000 random runs of concurrent edits on
// the hub and on up to three links (both sides changed, stale bases, foreign values, every
// policy). Each input is planned again in the same order, in reverse and rotated link order:
// the plans are identical; and every conflict is decided by its field's policy (hub_wins for
// the hub, remote_wins for a remote, latest_wins for the later change, a tie to the hub).
func TestPlan_DeterministicOverRandomRuns(t *testing.T) {
	conflicts := 0
	for run := range uint64(1000) {
		in := randomInput(rand.New(rand.NewPCG(run, 0x5eed)))
		p := mustJSON(t, Plan(in))
		variants := []Input{in, in, in}
		variants[1].Links = slices.Clone(in.Links)
		slices.Reverse(variants[1].Links)
		if len(in.Links) > 1 {
			variants[2].Links = append(slices.Clone(in.Links[1:]), in.Links[0])
		}
		for i, v := range variants {
			if again := mustJSON(t, Plan(v)); again != p {
				t.Fatalf("run %d, variant %d: the same input planned differently:\n%s\n%s", run, i, p, again)
			}
		}
		res := Plan(in)
		for _, c := range res.Conflicts {
			conflicts++
			switch c.Rule {
			case HubWins:
				if c.Winner != "hub" {
					t.Fatalf("run %d: hub_wins decided for %s: %+v", run, c.Winner, c)
				}
			case RemoteWins:
				if c.Winner == "hub" {
					t.Fatalf("run %d: remote_wins decided for the hub: %+v", run, c)
				}
			case LatestWins:
				if c.Winner == "hub" {
					for _, l := range in.Links {
						if l.ID == c.Link && l.ChangedAt.After(in.HubChangedAt) {
							t.Fatalf("run %d: latest_wins gave the hub a field %s changed later: %+v", run, l.ID, c)
						}
					}
				}
			}
		}
	}
	t.Logf("1,000 random runs, %d conflicts decided, each plan identical in three link orders", conflicts)
}

// closed is a closed incident's fields with a classification and determination.
func closed(c incident.Classification, d incident.Determination) incident.Fields {
	f := fields(incident.StatusResolved, incident.SeverityMedium, "ana@contoso.com")
	f.Classification, f.Determination = c, d
	return f
}

// TestPlan_ARemoteRefinementOfAClassificationTheHubReplacedIsNotTakenIn: both sides agreed on
// false positive (not enough data); an analyst re-classifies it in the hub as a benign
// positive (security testing); later a remote analyst refines the old false positive as not
// malicious. The determination alone changed remotely, so field by field the hub would keep
// its classification and take the remote's later determination: benign positive with "not
// malicious", which fits no classification the hub has, which the API then refused to keep,
// and which was written to Defender. (Found by the echo test once it compared classification
// and determination.) The hub's classification and its refinement stand together.
func TestPlan_ARemoteRefinementOfAClassificationTheHubReplacedIsNotTakenIn(t *testing.T) {
	agreed := closed(incident.ClassificationFalsePositive, incident.DeterminationNotEnoughDataToValidate)
	hub := closed(incident.ClassificationBenignPositive, incident.DeterminationSecurityTesting)
	in := Input{Hub: hub, HubChangedAt: t1, Links: []Link{{ID: "graph:1", System: incident.Graph, Base: ptr(agreed),
		Observed: closed(incident.ClassificationFalsePositive, incident.DeterminationNotMalicious), ChangedAt: t2}}}
	p := Plan(in)
	if p.Hub.Classification != hub.Classification || p.Hub.Determination != hub.Determination {
		t.Errorf("hub = %s/%s, want the hub's own %s/%s", p.Hub.Classification, p.Hub.Determination, hub.Classification, hub.Determination)
	}
	if !p.Hub.Determination.Fits(p.Hub.Classification) {
		t.Errorf("determination %s does not fit classification %s", p.Hub.Determination, p.Hub.Classification)
	}
	if w, _ := p.WriteFor("graph:1"); !reflect.DeepEqual(w.Fields, []Field{FieldClassification, FieldDetermination}) {
		t.Errorf("writes %v, want the hub's classification and determination together", w.Fields)
	}
	if len(p.Inbound) != 0 {
		t.Errorf("taken in: %v", p.Inbound)
	}
	if len(p.Conflicts) != 1 || p.Conflicts[0].Field != FieldDetermination || p.Conflicts[0].Winner != "hub" || p.Conflicts[0].Rule != FollowsClassification {
		t.Errorf("conflicts %v, want the determination won by the hub, following its classification", p.Conflicts)
	}
	if again := Plan(apply(in, p)); !again.Empty() {
		t.Errorf("re-plan not empty: %+v", again)
	}

	// The remote's refinement is refused also when the hub had not touched its determination.
	in.Hub.Determination = ""
	p = Plan(in)
	if p.Hub.Determination != "" || len(p.Inbound) != 0 {
		t.Errorf("hub determination %q, inbound %v; want the hub's own (none), nothing taken in", p.Hub.Determination, p.Inbound)
	}
	if len(p.Conflicts) != 1 || p.Conflicts[0].Winner != "hub" || p.Conflicts[0].Remote != string(incident.DeterminationNotMalicious) {
		t.Errorf("conflicts %v, want the refused remote determination recorded", p.Conflicts)
	}
}

// TestPlan_AHubRefinementOfAClassificationARemoteReplacedGivesWayToTheRemotes: the hub
// refines a true positive (malware → phishing) after a remote analyst re-classified the
// incident as a false positive (not malicious). The classification comes in; the hub's later
// determination refined the classification that lost, so the remote's own determination comes
// with its classification rather than none at all (the hub then showed no determination while
// Defender showed one).
func TestPlan_AHubRefinementOfAClassificationARemoteReplacedGivesWayToTheRemotes(t *testing.T) {
	agreed := closed(incident.ClassificationTruePositive, incident.DeterminationMalware)
	remote := closed(incident.ClassificationFalsePositive, incident.DeterminationNotMalicious)
	in := Input{Hub: closed(incident.ClassificationTruePositive, incident.DeterminationPhishing), HubChangedAt: t2,
		Links: []Link{{ID: "graph:1", System: incident.Graph, Base: ptr(agreed), Observed: remote, ChangedAt: t1}}}
	p := Plan(in)
	if p.Hub.Classification != remote.Classification || p.Hub.Determination != remote.Determination {
		t.Errorf("hub = %s/%s, want the remote's %s/%s", p.Hub.Classification, p.Hub.Determination, remote.Classification, remote.Determination)
	}
	if len(p.Writes) != 0 {
		t.Errorf("writes %v, want none", p.Writes)
	}
	if len(p.Conflicts) != 1 || p.Conflicts[0].Winner != "graph:1" || p.Conflicts[0].Rule != FollowsClassification {
		t.Errorf("conflicts %v, want the determination won by the remote, following its classification", p.Conflicts)
	}
	if again := Plan(apply(in, p)); !again.Empty() {
		t.Errorf("re-plan not empty: %+v", again)
	}
}

// TestPlan_AFieldTakenInFromALinkWithAWriteIsAgreedThere: a remote analyst reopens an incident
// (its classification cleared) while the hub's tag change is still to be written to that link.
// What was taken in is agreed on the link from then on — while the write is pending
// (PendingBases) and once it succeeded (AgreedAfter) — so that when the remote analyst closes
// it again as before, that is a remote change and comes in; and the tag is still written. Both used to keep the link's old
// agreed classification: the remote's second change looked like no change, and the hub's
// "reopened" state was written over it, a lost update. (Found by the echo test once it
// compared classifications.)
func TestPlan_AFieldTakenInFromALinkWithAWriteIsAgreedThere(t *testing.T) {
	agreed := closed(incident.ClassificationFalsePositive, incident.DeterminationNotMalicious)
	reopened := agreed
	reopened.Status, reopened.Classification, reopened.Determination = incident.StatusInProgress, incident.ClassificationUndetermined, incident.DeterminationUnknown
	hub := agreed
	hub.Tags = []string{"hub-tag"}
	in := Input{Hub: hub, HubChangedAt: t1, Links: []Link{{ID: "graph:1", System: incident.Graph, Base: ptr(agreed), Observed: reopened, ChangedAt: t2}}}

	// A poll takes the reopening in, with the tag still to write.
	p := Plan(in)
	if p.Hub.Classification != incident.ClassificationUndetermined || p.Hub.Status != incident.StatusInProgress {
		t.Fatalf("hub = %+v, want the remote's reopening taken in", p.Hub)
	}
	if w, _ := p.WriteFor("graph:1"); !reflect.DeepEqual(w.Fields, []Field{FieldTags}) {
		t.Fatalf("writes %v, want the tags", w.Fields)
	}
	closedAgain := reopened
	closedAgain.Status, closedAgain.Classification, closedAgain.Determination = agreed.Status, agreed.Classification, agreed.Determination
	for name, base := range map[string]incident.Fields{
		"while the write is pending": p.PendingBases["graph:1"],
		"after the write succeeded":  p.AgreedAfter("graph:1", []Field{FieldTags}, incident.Fields{Tags: []string{"hub-tag"}}),
	} {
		t.Run(name, func(t *testing.T) {
			if base.Classification != incident.ClassificationUndetermined || base.Status != incident.StatusInProgress {
				t.Errorf("agreed %+v, want the reopening taken in", base)
			}
			observed := closedAgain
			if name == "after the write succeeded" {
				observed.Tags = []string{"hub-tag"}
			}
			next := Plan(Input{Hub: p.Hub, HubChangedAt: t1, Links: []Link{{ID: "graph:1", System: incident.Graph, Base: &base, Observed: observed, ChangedAt: t2.Add(time.Minute)}}})
			if next.Hub.Classification != agreed.Classification || next.Hub.Status != agreed.Status {
				t.Errorf("hub = %+v, want the remote's close taken in", next.Hub)
			}
			if w, ok := next.WriteFor("graph:1"); ok && slices.Contains(w.Fields, FieldClassification) {
				t.Errorf("writes %v: the hub's stale classification over the remote's change", w.Fields)
			}
		})
	}
	// While the write is pending, the tag is still to write.
	pending := p.PendingBases["graph:1"]
	retry := Plan(Input{Hub: p.Hub, HubChangedAt: t1, Links: []Link{{ID: "graph:1", System: incident.Graph, Base: &pending, Observed: reopened, ChangedAt: t2}}})
	if w, _ := retry.WriteFor("graph:1"); !reflect.DeepEqual(w.Fields, []Field{FieldTags}) || len(retry.Inbound) != 0 {
		t.Errorf("retry writes %v, takes in %v; want the tags written again and nothing taken in", w.Fields, retry.Inbound)
	}
}
