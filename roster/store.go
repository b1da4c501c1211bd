package roster

import (
	"bufio"
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
)

// indexStride is how many rows one entry of the offset index covers.
const indexStride = 256

// Modes of what Put creates: stored rosters are readable by their owner only.
const (
	dirMode  fs.FileMode = 0o700
	fileMode fs.FileMode = 0o600
)

// Store keeps validated rosters as files the worker pages through, because a
// large roster (100,000 rows is about 12 MB) can never be a workflow input.
//
// Each roster is DIR/KEY.jsonl, one Participant per line as JSON, where KEY
// is the hex sha256 of the file's content, plus DIR/KEY.idx, a small JSON
// index of byte offsets every 256 rows. Both are written atomically (temp
// file, then rename); the index can be rebuilt from the data file. Files are
// 0600 and a directory Put creates is 0700: rosters name people, and only
// the user the starter and the worker run as may read them.
type Store struct {
	Dir string
}

// Ref names a stored roster. It is small enough for any workflow input.
type Ref struct {
	Key   string `json:"key"`   // hex sha256 of the stored content
	Count int    `json:"count"` // number of participants
}

// storeIndex is the sidecar DIR/KEY.idx.
type storeIndex struct {
	Count   int     `json:"count"`
	Size    int64   `json:"size"`    // size of the data file it describes
	Stride  int     `json:"stride"`  // rows per offset
	Offsets []int64 `json:"offsets"` // byte offset of rows 0, Stride, 2*Stride, ...
}

// Put stores ps and returns its Ref. Putting equal content again returns the
// same Ref and rewrites nothing.
func (s Store) Put(ps []Participant) (Ref, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	idx := storeIndex{Count: len(ps), Stride: indexStride}
	for i := range ps {
		if i%indexStride == 0 {
			idx.Offsets = append(idx.Offsets, int64(buf.Len()))
		}
		if err := enc.Encode(ps[i]); err != nil {
			return Ref{}, fmt.Errorf("put roster: encode participant %d: %w", i, err)
		}
	}
	idx.Size = int64(buf.Len())
	sum := sha256.Sum256(buf.Bytes())
	ref := Ref{Key: hex.EncodeToString(sum[:]), Count: len(ps)}

	// Rosters name people: only the user the starter and the worker run as
	// may read them. A directory that already exists keeps the mode its
	// owner gave it; the files are 0600 whatever it is.
	if err := os.MkdirAll(s.Dir, dirMode); err != nil {
		return Ref{}, fmt.Errorf("put roster: %w", err)
	}
	data, idxPath := s.paths(ref.Key)
	if fi, err := os.Stat(data); err == nil && fi.Size() == idx.Size {
		if _, err := s.readIndex(idxPath, fi.Size()); err == nil {
			// Already stored, perhaps by a version that wrote 0644.
			for _, p := range []string{idxPath, data} {
				if err := restrict(p); err != nil {
					return Ref{}, fmt.Errorf("put roster %s: %w", ref.Key, err)
				}
			}
			return ref, nil
		}
	}
	idxJSON, err := json.Marshal(idx)
	if err != nil {
		return Ref{}, fmt.Errorf("put roster %s: encode index: %w", ref.Key, err)
	}
	// Index first: a data file without its index is repaired on load, but
	// the data file's presence is what marks the roster as stored.
	if err := WriteAtomic(idxPath, idxJSON); err != nil {
		return Ref{}, fmt.Errorf("put roster %s: %w", ref.Key, err)
	}
	if err := WriteAtomic(data, buf.Bytes()); err != nil {
		return Ref{}, fmt.Errorf("put roster %s: %w", ref.Key, err)
	}
	return ref, nil
}

// Load returns up to limit participants starting at offset (0-based). It
// checks that the roster exists and holds ref.Count participants. An offset
// equal to ref.Count returns no participants.
func (s Store) Load(ref Ref, offset, limit int) ([]Participant, error) {
	if !validKey(ref.Key) {
		return nil, fmt.Errorf("load roster: key %q: expected 64 hex digits", ref.Key)
	}
	if offset < 0 || limit < 0 {
		return nil, fmt.Errorf("load roster %s: offset %d, limit %d: expected both >= 0", ref.Key, offset, limit)
	}
	data, idxPath := s.paths(ref.Key)
	f, err := os.Open(data)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("load roster %s: not found in %s (was it stored with Put on this machine?)", ref.Key, s.Dir)
	}
	if err != nil {
		return nil, fmt.Errorf("load roster %s: %w", ref.Key, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("load roster %s: %w", ref.Key, err)
	}
	idx, err := s.readIndex(idxPath, fi.Size())
	if err != nil {
		// Missing or stale index: rebuild it in memory by one scan.
		if idx, err = scanIndex(f, fi.Size()); err != nil {
			return nil, fmt.Errorf("load roster %s: %w", ref.Key, err)
		}
	}
	if idx.Count != ref.Count {
		return nil, fmt.Errorf("load roster %s: holds %d participants, expected %d", ref.Key, idx.Count, ref.Count)
	}
	if offset > idx.Count {
		return nil, fmt.Errorf("load roster %s: offset %d: expected at most %d", ref.Key, offset, idx.Count)
	}
	n := min(limit, idx.Count-offset)
	if n == 0 {
		return []Participant{}, nil
	}

	block := offset / idx.Stride
	if _, err := f.Seek(idx.Offsets[block], io.SeekStart); err != nil {
		return nil, fmt.Errorf("load roster %s: %w", ref.Key, err)
	}
	r := bufio.NewReaderSize(f, 64<<10)
	for skip := offset - block*idx.Stride; skip > 0; {
		_, err := r.ReadSlice('\n')
		switch {
		case err == nil:
			skip--
		case errors.Is(err, bufio.ErrBufferFull):
			// a row longer than the buffer: keep reading it
		default:
			return nil, fmt.Errorf("load roster %s: skip to row %d: %w", ref.Key, offset, err)
		}
	}
	out := make([]Participant, 0, n)
	for i := range n {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return nil, fmt.Errorf("load roster %s: read row %d: %w", ref.Key, offset+i, err)
		}
		var p Participant
		if err := json.Unmarshal(line, &p); err != nil {
			return nil, fmt.Errorf("load roster %s: row %d: %w", ref.Key, offset+i, err)
		}
		out = append(out, p)
	}
	return out, nil
}

func (s Store) paths(key string) (data, idx string) {
	base := filepath.Join(s.Dir, key)
	return base + ".jsonl", base + ".idx"
}

// readIndex reads the sidecar and checks it describes a data file of size.
func (s Store) readIndex(path string, size int64) (storeIndex, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return storeIndex{}, err
	}
	var idx storeIndex
	if err := json.Unmarshal(b, &idx); err != nil {
		return storeIndex{}, err
	}
	want := 0
	if idx.Stride > 0 {
		want = (idx.Count + idx.Stride - 1) / idx.Stride
	}
	if idx.Size != size || idx.Stride <= 0 || len(idx.Offsets) != want {
		return storeIndex{}, errors.New("stale index")
	}
	return idx, nil
}

// scanIndex builds the index by reading the whole data file.
func scanIndex(f *os.File, size int64) (storeIndex, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return storeIndex{}, err
	}
	idx := storeIndex{Size: size, Stride: indexStride}
	r := bufio.NewReaderSize(f, 64<<10)
	var pos int64
	rowStart := true
	for {
		chunk, err := r.ReadSlice('\n')
		if len(chunk) > 0 && rowStart {
			if idx.Count%indexStride == 0 {
				idx.Offsets = append(idx.Offsets, pos)
			}
			idx.Count++
		}
		pos += int64(len(chunk))
		switch {
		case err == nil:
			rowStart = true
		case errors.Is(err, bufio.ErrBufferFull):
			rowStart = false
		case err == io.EOF:
			if len(chunk) > 0 {
				return storeIndex{}, errors.New("data file ends in the middle of a row")
			}
			return idx, nil
		default:
			return storeIndex{}, err
		}
	}
}

func validKey(k string) bool {
	if len(k) != 64 {
		return false
	}
	_, err := hex.DecodeString(k)
	return err == nil
}

// WriteAtomic writes b to path, owner-only (0600), through a temporary
// file in the same directory and a rename, so readers never see a partial
// file. The usage ledger writes its entries with it too.
func WriteAtomic(path string, b []byte) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = tmp.Chmod(fileMode); err != nil {
		return err
	}
	if _, err = tmp.Write(b); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// restrict makes path readable by its owner only, if it is not already.
func restrict(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.Mode().Perm() == fileMode {
		return nil
	}
	return os.Chmod(path, fileMode)
}

// MaxBlobSize bounds a blob LoadBlob reads: a snapshot of an event of
// 100,000 participants is about 30 MB.
const MaxBlobSize = 256 << 20

// PutBlob stores b (a JSON document the worker hands between activities,
// such as a reconcile's read of the event, too large for a workflow input)
// as DIR/KEY.blob, 0600, and returns KEY, the hex sha256 of b. Putting equal
// content again rewrites nothing.
func (s Store) PutBlob(b []byte) (string, error) {
	sum := sha256.Sum256(b)
	key := hex.EncodeToString(sum[:])
	if err := os.MkdirAll(s.Dir, dirMode); err != nil {
		return "", fmt.Errorf("put blob: %w", err)
	}
	path := s.blobPath(key)
	if fi, err := os.Stat(path); err == nil && fi.Size() == int64(len(b)) {
		return key, restrict(path)
	}
	if err := WriteAtomic(path, b); err != nil {
		return "", fmt.Errorf("put blob %s: %w", key, err)
	}
	return key, nil
}

// LoadBlob reads the blob PutBlob stored under key, and checks its content
// against the key.
func (s Store) LoadBlob(key string) ([]byte, error) {
	if !validKey(key) {
		return nil, fmt.Errorf("load blob: key %q: expected 64 hex digits", key)
	}
	f, err := os.Open(s.blobPath(key))
	if err != nil {
		return nil, fmt.Errorf("load blob %s: %w (is roster_dir the same directory for every worker?)", key, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxBlobSize+1))
	if err != nil {
		return nil, fmt.Errorf("load blob %s: %w", key, err)
	}
	if len(b) > MaxBlobSize {
		return nil, fmt.Errorf("load blob %s: over %d bytes", key, MaxBlobSize)
	}
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != key {
		return nil, fmt.Errorf("load blob %s: content does not match its key (changed on disk?)", key)
	}
	return b, nil
}

func (s Store) blobPath(key string) string { return filepath.Join(s.Dir, key+".blob") }
