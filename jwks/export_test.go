package jwks

import "time"

// NextRefresh returns when the background refresh fetches next.
func (v *Verifier) NextRefresh() time.Time {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.res.Next()
}
