package web

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"time"
)

// assetVersion changes with the embedded assets, so that browsers fetch new ones at once
// although they may cache them for an hour.
var assetVersion = func() string {
	sum := sha256.New()
	_ = fs.WalkDir(staticFS, "static", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := staticFS.ReadFile(path)
			sum.Write(b)
		}
		return nil
	})
	return hex.EncodeToString(sum.Sum(nil))[:12]
}()

// funcs are the helpers templates use.
func (h *Handler) funcs() template.FuncMap {
	return template.FuncMap{
		"label": label,
		"asset": func(name string) string { return "/static/" + name + "?v=" + assetVersion },
		"utc": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return t.UTC().Format("2006-01-02 15:04:05 UTC")
		},
		"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"ago": func(t time.Time) string { return ago(h.now(), t) },
		"dur": func(d time.Duration) string {
			if d <= 0 {
				return "—"
			}
			return d.String()
		},
		"join":   strings.Join,
		"isZero": func(t time.Time) bool { return t.IsZero() },
	}
}

// ago says how long before now t was, coarsely: "just now", "5 min ago", "3 h ago", "2 days ago".
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "in " + (-d).Round(time.Second).String()
	case d < 10*time.Second:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%d s ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d.Hours()))
	}
	return fmt.Sprintf("%d days ago", int(d.Hours()/24))
}

// parsePages parses each page template together with the layout and the shared partials.
func (h *Handler) parsePages() map[string]*template.Template {
	base := template.Must(template.New("").Funcs(h.funcs()).ParseFS(templateFS, "templates/layout.html"))
	pages := map[string]*template.Template{}
	for _, name := range []string{"login", "queue", "incident", "tenants", "error"} {
		t := template.Must(template.Must(base.Clone()).ParseFS(templateFS, "templates/"+name+".html"))
		pages[name] = t
	}
	return pages
}

// renderFragment renders one named template of a page, without the layout: a part of a page
// that htmx swaps in.
func (h *Handler) renderFragment(w http.ResponseWriter, r *http.Request, page, name string, data any) {
	var buf bytes.Buffer
	if err := h.pages[page].ExecuteTemplate(&buf, name, data); err != nil {
		h.fail(w, r, fmt.Errorf("render %s/%s: %w", page, name, err))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(buf.Bytes())
}
