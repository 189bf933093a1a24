package cli

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/socsync/socsync/internal/forward"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

func TestDCRTemplate_PrintsTheTableAndRuleOfTheConfiguredStream(t *testing.T) {
	cfg := writeConfig(t, tenantConfig+"forward:\n  stream: Custom-SocsyncIncidents\n")
	code, out, errOut := run(t, nil, "dcr-template", "--config", cfg)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	golden := filepath.Join("testdata", "dcr-template.golden.json")
	if *update {
		if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/cli -run DCRTemplate -update to write it)", err)
	}
	if out != string(want) {
		t.Errorf("the template differs from %s (run with -update if the row type changed on purpose):\n%s", golden, out)
	}
	// The template is the row type's: every column of forward.Row, in the table and the stream.
	var tpl struct {
		Resources []struct {
			Properties struct {
				Schema struct {
					Columns []forward.Column `json:"columns"`
				} `json:"schema"`
				StreamDeclarations map[string]struct {
					Columns []forward.Column `json:"columns"`
				} `json:"streamDeclarations"`
			} `json:"properties"`
		} `json:"resources"`
	}
	if err := json.Unmarshal([]byte(out), &tpl); err != nil || len(tpl.Resources) < 2 {
		t.Fatalf("not an ARM template: %v", err)
	}
	table := tpl.Resources[0].Properties.Schema.Columns
	stream := tpl.Resources[1].Properties.StreamDeclarations["Custom-SocsyncIncidents"].Columns
	cols := forward.Columns()
	if len(table) != len(cols) || len(stream) != len(cols) {
		t.Fatalf("%d table and %d stream columns for %d in forward.Row", len(table), len(stream), len(cols))
	}
	for i, c := range cols {
		if table[i] != c || stream[i].Name != c.Name || stream[i].Type != c.Type {
			t.Errorf("column %d: table %+v, stream %+v, row %+v", i, table[i], stream[i], c)
		}
	}
	if !strings.Contains(errOut, "SocsyncIncidents_CL") || !strings.Contains(errOut, "az deployment group create") {
		t.Errorf("stderr: %s", errOut)
	}
}

func TestDCRTemplate_UsesTheDefaultStreamAndNeedsAConfiguration(t *testing.T) {
	code, out, _ := run(t, nil, "dcr-template", "--config", writeConfig(t, tenantConfig))
	if code != exitOK || !strings.Contains(out, `"Custom-SocsyncIncidents": {`) {
		t.Errorf("without forward.stream: exit %d", code)
	}
	if code, _, _ := run(t, nil, "dcr-template"); code != exitUsage {
		t.Errorf("without --config: exit %d, want %d", code, exitUsage)
	}
}
