package cli

import (
	"context"
	"fmt"

	"github.com/socsync/socsync/internal/forward"
)

// defaultStream is the stream the template declares when forward.stream is not set yet.
const defaultStream = "Custom-SocsyncIncidents"

// cmdDCRTemplate prints the ARM template of the forward stream's custom table, data collection
// rule and role assignment (forward.Template), for forward.stream (or Custom-SocsyncIncidents).
func cmdDCRTemplate(_ context.Context, e env, args []string) int {
	fs := newFlags(e, "dcr-template")
	path := configFlag(e, fs)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	c, ok := loadConfig(e, *path, false)
	if !ok {
		return exitUsage
	}
	stream := c.Forward.Stream
	if stream == "" {
		stream = defaultStream
	}
	tpl, err := forward.Template(stream, version)
	if err != nil {
		fmt.Fprintf(e.stderr, "socsync dcr-template: %s: %v\n", c.File, err)
		return exitUsage
	}
	e.stdout.Write(tpl)
	fmt.Fprintf(e.stderr, `socsync dcr-template: the table %s and a data collection rule for stream %s.
Deploy it to the workspace's resource group, e.g.
  az deployment group create -g RG --template-file dcr.json \
    -p workspaceResourceId=/subscriptions/…/workspaces/… location=REGION principalObjectId=SP_OBJECT_ID
then set forward.dcr_immutable_id and cloud.ingestion from its outputs (dcrImmutableId,
logsIngestionEndpoint). See the README, "Forward stream".
`, forward.TableName(stream), stream)
	return exitOK
}
