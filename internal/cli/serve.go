package cli

import (
	"context"
	"log/slog"

	"github.com/socsync/socsync/internal/config"
	"github.com/socsync/socsync/internal/hub"
)

func cmdServe(ctx context.Context, e env, args []string) int {
	fs := newFlags(e, "serve")
	path := configFlag(e, fs)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	c, ok := loadConfig(e, *path, true)
	if !ok {
		return exitUsage
	}
	log := newLogger(e, c.Log)
	h, err := hub.New(ctx, c, hub.Options{Log: log, Getenv: e.getenv, Version: version})
	if err != nil {
		log.Error("socsync could not start", "err", err)
		return exitFailure
	}
	defer h.Close()
	if err := h.Run(ctx, nil); err != nil {
		log.Error("socsync stopped", "err", err)
		return exitFailure
	}
	return exitOK
}

// newLogger returns the process's structured logger as configured.
func newLogger(e env, lc config.Log) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(lc.Level)) // validated by config
	opts := &slog.HandlerOptions{Level: level}
	if lc.Format == "json" {
		return slog.New(slog.NewJSONHandler(e.stderr, opts))
	}
	return slog.New(slog.NewTextHandler(e.stderr, opts))
}
