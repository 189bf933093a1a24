package throttle

import (
	"context"
	"io"
	"net/http"
	"sync"
)

// replay hands each attempt of a request its own body. The first attempt sends the caller's
// body; later ones take a fresh one from req.GetBody (azcore sets it to rewind its seekable
// body; http.NewRequest sets it for in-memory readers).
//
// net/http may still be reading a body after RoundTrip has returned — it only promises to
// close it eventually — and azcore's GetBody rewinds the very same reader, so before taking a
// new body replay waits until every body it handed out has been closed.
type replay struct {
	first   io.ReadCloser
	getBody func() (io.ReadCloser, error)

	mu   sync.Mutex
	open int
	idle chan struct{} // closed when open drops to 0
}

// newReplay returns nil for a request without a body.
func newReplay(req *http.Request) *replay {
	if req.Body == nil || req.Body == http.NoBody {
		return nil
	}
	return &replay{first: req.Body, getBody: req.GetBody}
}

// replayable reports whether the request can be sent again.
func (r *replay) replayable() bool { return r == nil || r.getBody != nil }

// request returns the request to send as attempt n (from 0): req itself when it has no body,
// else a shallow copy carrying a body of its own.
func (r *replay) request(ctx context.Context, req *http.Request, n int) (*http.Request, error) {
	if r == nil {
		return req, nil
	}
	body := r.first
	if n > 0 {
		if err := r.settled(ctx); err != nil {
			return nil, err
		}
		var err error
		if body, err = r.getBody(); err != nil {
			return nil, err
		}
	}
	out := req.WithContext(req.Context())
	out.Body = r.track(body)
	if r.getBody != nil {
		// The transport itself may rewind (a reused connection that died before the request
		// was written); what it gets is tracked as well.
		out.GetBody = func() (io.ReadCloser, error) {
			b, err := r.getBody()
			if err != nil {
				return nil, err
			}
			return r.track(b), nil
		}
	}
	return out, nil
}

func (r *replay) track(b io.ReadCloser) io.ReadCloser {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.open == 0 {
		r.idle = make(chan struct{})
	}
	r.open++
	return &trackedBody{ReadCloser: b, r: r}
}

// settled waits until every body handed out has been closed.
func (r *replay) settled(ctx context.Context) error {
	r.mu.Lock()
	open, idle := r.open, r.idle
	r.mu.Unlock()
	if open == 0 {
		return nil
	}
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type trackedBody struct {
	io.ReadCloser
	r    *replay
	once sync.Once
}

func (b *trackedBody) Close() error {
	var err error
	b.once.Do(func() {
		err = b.ReadCloser.Close()
		b.r.mu.Lock()
		defer b.r.mu.Unlock()
		if b.r.open--; b.r.open == 0 {
			close(b.r.idle)
		}
	})
	return err
}
