package hub

import (
	"net/http"

	"github.com/socsync/socsync/internal/forward"
	"github.com/socsync/socsync/internal/webhook"
)

// forwardAndWebhooks adds the forwarder to the background workers when the forward stream is
// configured, and returns the handler of the configured inbound webhooks (nil when there are
// none). A forward credential that cannot be built leaves the forwarder off — the changes wait in
// the outbox — and a webhook whose secrets do not resolve is left out (it answers 404 like any
// unknown name); the rest of the hub runs either way.
func (h *Hub) forwardAndWebhooks() (http.Handler, error) {
	if fw := h.cfg.Forward; fw.Enabled() {
		cred, err := h.remote.creds.Forward()
		if err != nil {
			h.log.Error("forward stream off: its credential cannot be built; changes wait in the outbox", "err", err)
		} else {
			f, err := forward.New(forward.Target{Endpoint: h.cfg.Cloud.Ingestion, DCRImmutableID: fw.DCRImmutableID, Stream: fw.Stream},
				cred, h.remote.transport, h.store, forward.Options{Owner: h.opts.Owner, Log: h.log, Registerer: h.registry, Now: h.opts.Now, Version: h.opts.Version})
			if err != nil {
				return nil, err
			}
			h.background = append(h.background, f.Run)
		}
	}
	if len(h.cfg.Webhooks) == 0 {
		return nil, nil
	}
	var hooks []webhook.Hook
	for i, w := range h.cfg.Webhooks {
		hk := webhook.Hook{Name: w.Name, Kind: w.Kind, TenantID: w.Tenant, MaxBody: w.MaxBody}
		var err error
		if w.Token.Set() {
			hk.Token, err = h.cfg.Resolve(w.Token, h.opts.Getenv)
		}
		if err == nil && w.HMACSecret.Set() {
			hk.HMACSecret, err = h.cfg.Resolve(w.HMACSecret, h.opts.Getenv)
		}
		if err != nil {
			h.log.Error("webhook off: its secret cannot be read", "webhook", w.Name, "index", i, "err", err)
			continue
		}
		hooks = append(hooks, hk)
	}
	wh, err := webhook.New(hooks, h.store, webhook.Options{Log: h.log, Now: h.opts.Now, Registerer: h.registry})
	if err != nil {
		return nil, err
	}
	return wh, nil
}
