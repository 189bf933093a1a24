package emuconfig

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/socsync/socsync/internal/config"
	"github.com/socsync/socsync/internal/emulator"
)

func TestWrite_IsAValidConfigWithSecretsInFiles(t *testing.T) {
	em, err := emulator.New(emulator.Options{Tenants: 4, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	defer em.Close()
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	os.WriteFile(ca, []byte("not checked here"), 0o600)
	info := em.Info("https://127.0.0.1:8443", ca)
	path := filepath.Join(dir, "socsync.yaml")
	if err := Write(path, Params{Info: info, Listen: "127.0.0.1:0", Database: "sqlite:socsync.db", Idle: "10s", Hot: "2s"}); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(path, func(string) string { return "" })
	if err != nil {
		t.Fatalf("written config does not load: %v", err)
	}
	if err := c.CheckResources(func(string) string { return "" }); err != nil {
		t.Fatalf("written config's secrets do not resolve: %v", err)
	}
	if len(c.Tenants) != 4 || c.Cloud.Graph != info.BaseURL || !c.Forward.Enabled() {
		t.Errorf("config = %+v", c)
	}
	text, _ := os.ReadFile(path)
	for i, tn := range info.Tenants {
		if strings.Contains(string(text), tn.ClientSecret) {
			t.Errorf("a secret is inline in the config")
		}
		got, err := c.Resolve(c.Tenants[i].Credential.ClientSecret, nil)
		if err != nil || got != tn.ClientSecret {
			t.Errorf("tenant %d secret resolves to %q, %v", i, got, err)
		}
	}
}
