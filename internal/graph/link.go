package graph

import (
	"fmt"
	"net/url"
	"strings"
)

// followable checks a nextLink and returns it ready to send. The link is otherwise opaque, but
// it must lead to the configured endpoint (scheme, host and port) and the incidents
// collection: the request carries the tenant's token, which must never reach another host. A
// relative link is resolved against the endpoint. Characters a URL query may not hold raw are
// percent-encoded; everything else, valid escapes included, is kept as sent.
func followable(base *url.URL, collection, link string) (string, error) {
	raw, query, _ := strings.Cut(link, "?")
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("nextLink %q: %w", link, err)
	}
	if !u.IsAbs() {
		u = base.ResolveReference(u)
	}
	if !strings.EqualFold(u.Scheme, base.Scheme) || !strings.EqualFold(u.Host, base.Host) || u.User != nil {
		return "", fmt.Errorf("%w: nextLink to %s://%s, endpoint is %s", ErrForeignHost, u.Scheme, u.Host, base.Host)
	}
	if !strings.EqualFold(strings.TrimSuffix(u.Path, "/"), collection) {
		return "", fmt.Errorf("%w: nextLink path %q is not %s", ErrForeignHost, u.Path, collection)
	}
	u.RawQuery, u.Fragment, u.RawFragment = escapeQuery(query), "", ""
	return u.String(), nil
}

// escapeQuery percent-encodes the bytes RFC 3986 does not allow raw in a query (space, quotes,
// '#', '%' not starting an escape, non-ASCII, …). It is idempotent: a well-formed query comes
// back unchanged, and '+' keeps whatever meaning the server gave it.
func escapeQuery(q string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '%' && i+2 < len(q) && ishex(q[i+1]) && ishex(q[i+2]):
			b.WriteByte(c)
		case c != '%' && queryChar(c):
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// queryChar reports whether c may appear raw in a URL query: unreserved, sub-delims, ':', '@',
// '/', '?' (RFC 3986 §3.4).
func queryChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-._~!$&'()*+,;=:@/?", c) >= 0
}
