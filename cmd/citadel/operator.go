package main

// The operator endpoints outside ARM (update bundles, VM images) take
// files and answer lists; these are the two calls the commands share.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/citadel-cloud/citadel/internal/client"
)

// upload sends the file at path, of at most limit bytes, to the operator
// endpoint path+query (an update bundle, a VM image) and returns the
// server's answer, reporting progress on progress. A refusal (not an
// Owner, a bad argument) comes before a byte of the file is sent
// (Expect: 100-continue); there is no overall timeout, as the upload and
// the server's checks take as long as the file is large (Ctrl-C ends
// them). done, if set, is printed once the whole file is sent.
func upload(ctx context.Context, c *client.Client, file, path, contentType string, limit int64, progress io.Writer, done string) (int, []byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, nil, err
	}
	if st.Size() > limit {
		return 0, nil, fmt.Errorf("%s has %s, more than the %d GiB a server takes", file, mib(st.Size()), limit>>30)
	}
	token, err := c.Token(ctx)
	if err != nil {
		return 0, nil, err
	}
	body := &uploadProgress{r: f, total: st.Size(), out: progress, done: done}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(c.Creds.ARMEndpoint, "/")+path, body)
	if err != nil {
		return 0, nil, err
	}
	req.ContentLength = st.Size()
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Expect", "100-continue")
	tr := c.HTTP.Transport.(*http.Transport).Clone()
	tr.ExpectContinueTimeout = 10 * time.Second
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("upload %s: %w", file, err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	return resp.StatusCode, answer, err
}

// uploadProgress prints a line each time another tenth of the file is
// sent.
type uploadProgress struct {
	r         io.Reader
	n, total  int64
	out       io.Writer
	nextTenth int64
	done      string
}

func (u *uploadProgress) Read(p []byte) (int, error) {
	k, err := u.r.Read(p)
	u.n += int64(k)
	if u.total > 0 && u.n*10 >= u.nextTenth*u.total {
		percent := u.n * 100 / u.total
		fmt.Fprintf(u.out, "uploaded %.1f of %.1f MiB (%d%%)\n", float64(u.n)/(1<<20), float64(u.total)/(1<<20), percent)
		u.nextTenth = u.n*10/u.total + 1
		if u.n == u.total && u.done != "" {
			fmt.Fprintln(u.out, u.done)
		}
	}
	return k, err
}

// operatorList reads the {"value": [...]} list an operator endpoint
// answers at path; what names it in errors.
func operatorList[T any](ctx context.Context, c *client.Client, path, what string) ([]T, error) {
	r, err := c.Do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, err
	}
	if r.Status != http.StatusOK {
		return nil, serverRefusal(what, r.Status, r.Body)
	}
	var list struct {
		Value []T `json:"value"`
	}
	if err := json.Unmarshal(r.Body, &list); err != nil {
		return nil, fmt.Errorf("the server's answer: %w", err)
	}
	return list.Value, nil
}
