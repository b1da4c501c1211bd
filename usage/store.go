package usage

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/cohort-dev/cohort/roster"
)

// maxEntrySize bounds a ledger file that Load reads: an entry within its
// bounds is a few kilobytes; anything far larger is not one.
const maxEntrySize = 1 << 20

// Store keeps the ledger: one file per participant, DIR/KEY.json where KEY
// is the hex sha256 of the lower-cased address (an address is never a file
// name), 0600 in a 0700 directory (it names people and what they used),
// written atomically. Update holds a lock on the participant's file while
// it reads, changes and writes it, so the worker's reads and an organizer's
// grant never lose each other's change.
type Store struct {
	Dir string
}

// Modes of what the store creates.
const (
	dirMode  fs.FileMode = 0o700
	fileMode fs.FileMode = 0o600
)

// ErrTooLarge is a ledger file over maxEntrySize.
var ErrTooLarge = errors.New("ledger entry too large")

func (s Store) path(email string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(email))))
	return filepath.Join(s.Dir, hex.EncodeToString(sum[:])+".json")
}

// Load returns the participant's entry (an empty one when they have none).
func (s Store) Load(email string) (Entry, error) {
	e, err := s.read(s.path(email))
	if err != nil {
		return Entry{}, fmt.Errorf("load usage ledger of %s: %w", email, err)
	}
	if e.Email == "" {
		e.Email = strings.ToLower(strings.TrimSpace(email))
	}
	return e, nil
}

func (s Store) read(path string) (Entry, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Entry{}, nil
	}
	if err != nil {
		return Entry{}, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxEntrySize+1))
	if err != nil {
		return Entry{}, err
	}
	if len(b) > maxEntrySize {
		return Entry{}, fmt.Errorf("%s: %w (over %d bytes)", path, ErrTooLarge, maxEntrySize)
	}
	var e Entry
	if err := json.Unmarshal(b, &e); err != nil {
		return Entry{}, fmt.Errorf("%s: %w", path, err)
	}
	return e, nil
}

// Update applies change to the participant's entry under its lock and
// stores the result (bounded). A change that returns an error stores
// nothing.
func (s Store) Update(email string, change func(*Entry) error) (Entry, error) {
	if err := os.MkdirAll(s.Dir, dirMode); err != nil {
		return Entry{}, fmt.Errorf("update usage ledger of %s: %w", email, err)
	}
	path := s.path(email)
	unlock, err := lock(path + ".lock")
	if err != nil {
		return Entry{}, fmt.Errorf("update usage ledger of %s: lock: %w", email, err)
	}
	defer unlock()
	e, err := s.read(path)
	if err != nil {
		return Entry{}, fmt.Errorf("update usage ledger of %s: %w", email, err)
	}
	e.Email = strings.ToLower(strings.TrimSpace(email))
	if err := change(&e); err != nil {
		return Entry{}, err
	}
	e.bound()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		return Entry{}, fmt.Errorf("update usage ledger of %s: encode: %w", email, err)
	}
	if err := roster.WriteAtomic(path, buf.Bytes()); err != nil {
		return Entry{}, fmt.Errorf("update usage ledger of %s: %w", email, err)
	}
	return e, nil
}
