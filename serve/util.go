package serve

import (
	"crypto/subtle"
	"sort"
)

func subtleEq(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

func sortViews(v []SessionView) {
	sort.Slice(v, func(i, j int) bool {
		if !v[i].CreatedAt.Equal(v[j].CreatedAt) {
			return v[i].CreatedAt.Before(v[j].CreatedAt)
		}
		return v[i].ID < v[j].ID
	})
}
