package server

import (
	"archive/tar"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/citadel-cloud/citadel/internal/audit"
	"github.com/citadel-cloud/citadel/internal/store"
)

// A backup is a tar stream (the CLI encrypts it with the operator's
// passphrase before it touches a disk):
//
//	manifest.json         BackupManifest
//	etcd.snapshot         the whole store, with etcd's integrity hash
//	data/pki/...          the HTTPS CA and server certificate, with their keys
//	data/audit/...        the activity log's signing key and archived segments
//	data/bootstrap/...    the bootstrap administrator's credentials
//
// The OS images under data/images are not in it: they are the cluster
// versions' public media, imported again from where they came.
const (
	backupFormat   = 1
	manifestName   = "manifest.json"
	snapshotName   = "etcd.snapshot"
	dataPrefix     = "data/"
	backupAction   = "Citadel.Backup/backups/action"
	backupRevision = "X-Citadel-Backup-Revision"
)

// backedUpDirs are the data directory's parts a backup holds.
var backedUpDirs = []string{"pki", "audit", "bootstrap"}

// BackupManifest says what a backup holds.
type BackupManifest struct {
	Format   int       `json:"format"`
	Created  time.Time `json:"created"`
	Revision int64     `json:"revision"` // the store's revision, at least
	Location string    `json:"location"`
	Files    []string  `json:"files"` // of the data directory, slash-separated
}

// serveBackup answers GET /citadel/backup with a backup of this control
// plane. A backup holds every secret (the store, the CA's key, the
// activity log's signing key), so only a principal that may assign roles
// at every subscription (an Owner, who could grant itself anything) may
// take one; each backup, and each refusal, is in the activity log.
func (s *Server) serveBackup(rbac operatorAuthorizer, location string, log *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		c := s.startCall(w, r, backupAction, "backup", log)
		if c == nil {
			return
		}
		c.description = "a backup of the control plane"
		if err := c.authorize(rbac, true); err != nil {
			c.fail(err)
			return
		}
		tmp, err := os.CreateTemp(s.DataDir, "backup-*.snapshot")
		if err != nil {
			c.fail(err)
			return
		}
		defer os.Remove(tmp.Name())
		defer tmp.Close()
		rev, err := s.Store.Snapshot(ctx, tmp)
		if err != nil {
			c.fail(err)
			return
		}
		w.Header().Set("Content-Type", "application/x-tar")
		w.Header().Set(backupRevision, strconv.FormatInt(rev, 10))
		if err := writeBackup(w, tmp, s.DataDir, BackupManifest{Format: backupFormat, Created: time.Now().UTC(), Revision: rev, Location: location}); err != nil {
			// The status is sent: the client sees a truncated stream,
			// which the CLI refuses.
			log.ErrorContext(ctx, "backup interrupted", "err", err)
			c.record(audit.StatusFailed, http.StatusInternalServerError, nil)
			return
		}
		c.record(audit.StatusSucceeded, http.StatusOK, map[string]string{"revision": strconv.FormatInt(rev, 10)})
		log.InfoContext(ctx, "backup taken", "caller", cmp.Or(c.p.Name, c.p.ObjectID), "revision", rev)
	}
}

// writeBackup writes the backup: the manifest, the snapshot, then the
// data directory's files.
func writeBackup(w io.Writer, snapshot *os.File, dataDir string, m BackupManifest) error {
	var files []string
	for _, dir := range backedUpDirs {
		err := filepath.WalkDir(filepath.Join(dataDir, dir), func(p string, d fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			rel, err := filepath.Rel(dataDir, p)
			files = append(files, filepath.ToSlash(rel))
			return err
		})
		if err != nil {
			return err
		}
	}
	m.Files = files
	manifest, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	if err := addFile(tw, manifestName, int64(len(manifest)), strings.NewReader(string(manifest))); err != nil {
		return err
	}
	st, err := snapshot.Stat()
	if err != nil {
		return err
	}
	if _, err := snapshot.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if err := addFile(tw, snapshotName, st.Size(), snapshot); err != nil {
		return err
	}
	for _, name := range files {
		if err := addDataFile(tw, dataDir, name); err != nil {
			return err
		}
	}
	return tw.Close()
}

func addDataFile(tw *tar.Writer, dataDir, name string) error {
	f, err := os.Open(filepath.Join(dataDir, filepath.FromSlash(name)))
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	return addFile(tw, dataPrefix+name, st.Size(), f)
}

func addFile(tw *tar.Writer, name string, size int64, r io.Reader) error {
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: size, ModTime: time.Now(), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err := io.CopyN(tw, r, size)
	return err
}

// Restore makes dataDir, which must not hold a control plane yet, the
// data directory of the control plane a backup (as read from r) was taken
// of: its store, keys and credentials. A server started on it serves what
// the backup held.
func Restore(r io.Reader, dataDir string) (BackupManifest, error) {
	var m BackupManifest
	if entries, err := os.ReadDir(dataDir); err == nil && len(entries) > 0 {
		return m, fmt.Errorf("restore: %s is not empty: restore into a new data directory", dataDir)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return m, fmt.Errorf("restore: %w", err)
	}
	tr := tar.NewReader(r)
	snapshot := filepath.Join(dataDir, "restore.snapshot")
	defer os.Remove(snapshot)
	seen := map[string]bool{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return m, fmt.Errorf("restore: the backup is damaged or truncated: %w", err)
		}
		switch name := h.Name; {
		case name == manifestName:
			if err := json.NewDecoder(io.LimitReader(tr, 1<<20)).Decode(&m); err != nil {
				return m, fmt.Errorf("restore: manifest: %w", err)
			}
			if m.Format != backupFormat {
				return m, fmt.Errorf("restore: backup format %d, this citadel reads format %d", m.Format, backupFormat)
			}
		case name == snapshotName:
			if err := writeFile(snapshot, tr); err != nil {
				return m, err
			}
		case strings.HasPrefix(name, dataPrefix) && h.Typeflag == tar.TypeReg:
			rel := strings.TrimPrefix(name, dataPrefix)
			if !filepath.IsLocal(rel) || !backedUp(rel) {
				return m, fmt.Errorf("restore: the backup holds %q, which is not a file a backup takes", name)
			}
			if err := writeFile(filepath.Join(dataDir, filepath.FromSlash(rel)), tr); err != nil {
				return m, err
			}
		default:
			return m, fmt.Errorf("restore: the backup holds %q, which is not a file a backup takes", name)
		}
		seen[h.Name] = true
	}
	if !seen[manifestName] || !seen[snapshotName] {
		return m, errors.New("restore: the backup has no manifest or no store snapshot: it is truncated or not a citadel backup")
	}
	for _, f := range m.Files {
		if !seen[dataPrefix+f] {
			return m, fmt.Errorf("restore: the backup lists %s but does not hold it: it is truncated", f)
		}
	}
	if err := store.Restore(snapshot, filepath.Join(dataDir, "etcd")); err != nil {
		return m, fmt.Errorf("restore: %w", err)
	}
	return m, nil
}

// backedUp reports whether rel (slash-separated, under the data
// directory) is in a directory a backup takes.
func backedUp(rel string) bool {
	first, _, _ := strings.Cut(path.Clean(rel), "/")
	for _, d := range backedUpDirs {
		if first == d {
			return true
		}
	}
	return false
}

func writeFile(name string, r io.Reader) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o700); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	f, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return fmt.Errorf("restore: %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("restore: %s: %w", name, err)
	}
	return f.Close()
}
