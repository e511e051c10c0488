package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"filippo.io/age"

	"github.com/citadel-cloud/citadel/internal/client"
	"github.com/citadel-cloud/citadel/internal/server"
)

// minPassphrase is the shortest passphrase a backup is encrypted with.
const minPassphrase = 12

// passphraseFlag reads the backup passphrase from --passphrase-file, or
// else $CITADEL_BACKUP_PASSPHRASE: never from the command line, where
// other users of the machine could read it.
func passphraseFlag(fs *flag.FlagSet) func() (string, error) {
	file := fs.String("passphrase-file", "", "file holding the backup's passphrase (default $CITADEL_BACKUP_PASSPHRASE)")
	return func() (string, error) {
		p := os.Getenv("CITADEL_BACKUP_PASSPHRASE")
		if *file != "" {
			b, err := os.ReadFile(*file)
			if err != nil {
				return "", err
			}
			p = strings.TrimRight(string(b), "\r\n")
		}
		if len(p) < minPassphrase {
			return "", fmt.Errorf("a backup passphrase of at least %d characters is required (--passphrase-file or $CITADEL_BACKUP_PASSPHRASE)", minPassphrase)
		}
		return p, nil
	}
}

// runBackup fetches a backup from a running server and writes it to
// --out encrypted with the passphrase (age, scrypt): the plaintext never
// touches a disk.
func runBackup(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("citadel backup", flag.ContinueOnError)
	creds := credentialsFlag(fs)
	passphrase := passphraseFlag(fs)
	file := fs.String("out", "", "file to write the encrypted backup to (required; not overwritten)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *file == "" {
		return errors.New("--out is required")
	}
	pass, err := passphrase()
	if err != nil {
		return err
	}
	cr, err := creds()
	if err != nil {
		return err
	}
	c, err := client.New(cr)
	if err != nil {
		return err
	}
	token, err := c.Token(ctx)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(cr.ARMEndpoint, "/")+"/citadel/backup", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return fmt.Errorf("the server refused the backup: %s %s", resp.Status, body)
	}
	f, err := os.OpenFile(*file, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	recipient, err := age.NewScryptRecipient(pass)
	if err != nil {
		return err
	}
	n, err := encryptTo(f, recipient, resp.Body, out)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(*file) // a partial backup must not pass for one
		return fmt.Errorf("backup: %w", err)
	}
	fmt.Fprintf(out, "backup written: %s (%.1f MiB, store revision %s), encrypted with the passphrase\n", *file, float64(n)/(1<<20), resp.Header.Get("X-Citadel-Backup-Revision"))
	return nil
}

// encryptTo encrypts r into w, printing a progress line every few
// seconds, and returns the plaintext bytes copied.
func encryptTo(w io.Writer, to age.Recipient, r io.Reader, progress io.Writer) (int64, error) {
	enc, err := age.Encrypt(w, to)
	if err != nil {
		return 0, err
	}
	var n int64
	last := time.Now()
	buf := make([]byte, 1<<20)
	for {
		k, rerr := r.Read(buf)
		if k > 0 {
			if _, err := enc.Write(buf[:k]); err != nil {
				return n, err
			}
			n += int64(k)
			if time.Since(last) > 2*time.Second {
				fmt.Fprintf(progress, "backup: %.1f MiB so far\n", float64(n)/(1<<20))
				last = time.Now()
			}
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			return n, rerr
		}
	}
	return n, enc.Close()
}

// runRestore decrypts a backup and makes a new data directory of it,
// which `citadel server --data-dir` then serves.
func runRestore(_ context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("citadel restore", flag.ContinueOnError)
	passphrase := passphraseFlag(fs)
	file := fs.String("in", "", "the encrypted backup (required)")
	dataDir := fs.String("data-dir", "", "the new data directory to restore into; it must not exist or be empty (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *file == "" || *dataDir == "" {
		return errors.New("--in and --data-dir are required")
	}
	pass, err := passphrase()
	if err != nil {
		return err
	}
	f, err := os.Open(*file)
	if err != nil {
		return err
	}
	defer f.Close()
	identity, err := age.NewScryptIdentity(pass)
	if err != nil {
		return err
	}
	r, err := age.Decrypt(bufio.NewReader(f), identity)
	if err != nil {
		return fmt.Errorf("restore: %s cannot be decrypted (a wrong passphrase, or not a citadel backup): %w", *file, err)
	}
	m, err := server.Restore(r, *dataDir)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "restored into %s: the store at revision %d and %d files, backed up %s\nstart it with: citadel server --data-dir %s\n",
		*dataDir, m.Revision, len(m.Files), m.Created.Format(time.RFC3339), *dataDir)
	return nil
}
