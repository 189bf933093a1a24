package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/socsync/socsync/internal/config"
)

func TestEmulatorCommand_ServesWritesInfoAndStopsOnCancel(t *testing.T) {
	dir := t.TempDir()
	infoFile := filepath.Join(dir, "info.json")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, errb := &syncBuffer{}, &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"emulator", "--listen", "127.0.0.1:0", "--tenants", "2", "--seed", "3",
			"--info", infoFile, "--dir", filepath.Join(dir, "emu"), "--write-config", filepath.Join(dir, "hub", "socsync.yaml")}, func(string) string { return "" }, out, errb)
	}()
	var info struct {
		BaseURL string `json:"base_url"`
		CAFile  string `json:"ca_file"`
		Tenants []struct {
			TenantID string `json:"tenant_id"`
		} `json:"tenants"`
	}
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), "emulator listening on") {
		if time.Now().After(deadline) {
			t.Fatalf("no start message; stderr: %s", errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	b, err := os.ReadFile(infoFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &info); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(info.BaseURL, "https://127.0.0.1:") || len(info.Tenants) != 2 || !strings.Contains(out.String(), info.BaseURL) {
		t.Fatalf("info %+v, stdout %s", info, out.String())
	}
	if _, err := os.Stat(info.CAFile); err != nil {
		t.Fatalf("CA file: %v", err)
	}
	hub, err := config.Load(filepath.Join(dir, "hub", "socsync.yaml"), func(string) string { return "" })
	if err != nil {
		t.Fatalf("--write-config wrote an invalid configuration: %v", err)
	}
	if err := hub.CheckResources(func(string) string { return "" }); err != nil || len(hub.Tenants) != 2 || hub.Cloud.Graph != info.BaseURL {
		t.Fatalf("hub configuration %+v: %v", hub, err)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d; stderr %s", code, errb.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("emulator did not stop on cancel")
	}
}

func TestEmulatorCommand_UsageErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"emulator", "--tenants", "0"}, "--tenants: want at least 1"},
		{[]string{"emulator", "--bogus"}, "flag provided but not defined"},
		{[]string{"emulator", "extra"}, "unexpected arguments"},
	}
	for _, c := range cases {
		out, errb := &syncBuffer{}, &syncBuffer{}
		code := Run(context.Background(), c.args, func(string) string { return "" }, out, errb)
		if code != 2 || !strings.Contains(errb.String(), c.want) {
			t.Errorf("%v: exit %d, stderr %q", c.args, code, errb.String())
		}
	}
}
