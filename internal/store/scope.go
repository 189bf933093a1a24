package store

import (
	"fmt"
	"strings"
)

// Scope is the set of tenants a query may see: all of them (the hub itself, admins) or a list
// (an analyst's tenants). The zero Scope sees nothing.
type Scope struct {
	all     bool
	tenants []string
}

// AllTenants is the scope of the hub itself and of admins.
func AllTenants() Scope { return Scope{all: true} }

// Tenants is the scope of the listed tenants only.
func Tenants(ids ...string) Scope {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = strings.ToLower(id)
	}
	return Scope{tenants: out}
}

// Allows reports whether the scope includes the tenant.
func (sc Scope) Allows(tenantID string) bool {
	if sc.all {
		return true
	}
	for _, t := range sc.tenants {
		if t == strings.ToLower(tenantID) {
			return true
		}
	}
	return false
}

// where returns an SQL condition on col restricting rows to the scope, with its arguments
// numbered from first.
func (sc Scope) where(col string, first int) (string, []any) {
	if sc.all {
		return "1 = 1", nil
	}
	if len(sc.tenants) == 0 {
		return "1 = 0", nil
	}
	ph := make([]string, len(sc.tenants))
	args := make([]any, len(sc.tenants))
	for i, t := range sc.tenants {
		ph[i] = fmt.Sprintf("$%d", first+i)
		args[i] = t
	}
	return col + " IN (" + strings.Join(ph, ", ") + ")", args
}
