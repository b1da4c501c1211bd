//go:build !unix

package usage

import "sync"

// lockMu serialises updates within the process where flock(2) is missing.
var lockMu sync.Mutex

func lock(string) (func(), error) {
	lockMu.Lock()
	return lockMu.Unlock, nil
}
