package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/citadel-cloud/citadel/internal/images"
	"github.com/citadel-cloud/citadel/internal/server"
)

const imageUsage = `usage: citadel image <command> [flags]

the catalog of VM images, against a running server (--credentials as for backup):
  import FILE --name NAME [--os-type Linux|Windows] [--boot-method UEFI|BIOS]
          upload a raw or qcow2 disk image (Owner); VMs name it as their vmImage,
          e.g. registry.example/ubuntu:22.04; importing a name again replaces its image
  list    list the images
  delete NAME
          remove an image from the catalog (Owner)
`

// runImage runs an image command; progress gets the upload's progress
// lines.
func runImage(ctx context.Context, args []string, out, progress io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, imageUsage)
		return errors.New("missing image command")
	}
	switch args[0] {
	case "import":
		return imageImport(ctx, args[1:], out, progress)
	case "list":
		return imageList(ctx, args[1:], out)
	case "delete":
		return imageDelete(ctx, args[1:], out)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(out, imageUsage)
		return nil
	}
	fmt.Fprint(os.Stderr, imageUsage)
	return fmt.Errorf("unknown image command %q", args[0])
}

func imageImport(ctx context.Context, args []string, out, progress io.Writer) error {
	fs := flag.NewFlagSet("citadel image import", flag.ContinueOnError)
	creds := credentialsFlag(fs)
	name := fs.String("name", "", "the image's name, as VMs give it in vmImage (required)")
	osType := fs.String("os-type", images.Linux, "the image's operating system: Linux or Windows")
	bootMethod := fs.String("boot-method", images.UEFI, "how the image boots: UEFI or BIOS")
	files, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(files) != 1 || *name == "" {
		return errors.New("usage: citadel image import FILE --name NAME [--os-type Linux|Windows] [--boot-method UEFI|BIOS] [--credentials FILE]")
	}
	f, err := os.Open(files[0])
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Size() > server.MaxImageSize {
		return fmt.Errorf("%s has %s, more than the %d GiB a server takes", files[0], mib(st.Size()), server.MaxImageSize>>30)
	}
	c, err := updateClient(creds)
	if err != nil {
		return err
	}
	token, err := c.Token(ctx)
	if err != nil {
		return err
	}
	query := url.Values{"name": {*name}, "osType": {*osType}, "bootMethod": {*bootMethod}}
	body := &sendProgress{r: f, total: st.Size(), out: progress}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(c.Creds.ARMEndpoint, "/")+"/citadel/images?"+query.Encode(), body)
	if err != nil {
		return err
	}
	req.ContentLength = st.Size()
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/octet-stream")
	// A refusal (not an Owner, a bad name) comes before a byte of the
	// image is sent.
	req.Header.Set("Expect", "100-continue")
	tr := c.HTTP.Transport.(*http.Transport).Clone()
	tr.ExpectContinueTimeout = 10 * time.Second
	// No overall timeout: the upload takes as long as the image is
	// large. Ctrl-C ends it.
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return fmt.Errorf("upload %s: %w", files[0], err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusCreated {
		return serverRefusal("image", resp.StatusCode, answer)
	}
	var img images.Image
	if err := json.Unmarshal(answer, &img); err != nil {
		return fmt.Errorf("the server's answer: %w", err)
	}
	fmt.Fprintf(out, "imported image %s: %s, %s, %s, %s, sha256:%s\n", img.Name, img.OSType, img.BootMethod, img.Format, mib(img.Size), img.SHA256)
	return nil
}

// sendProgress prints a line each time another tenth of the file is sent.
type sendProgress struct {
	r         io.Reader
	n, total  int64
	out       io.Writer
	nextTenth int64
}

func (s *sendProgress) Read(p []byte) (int, error) {
	k, err := s.r.Read(p)
	s.n += int64(k)
	if s.total > 0 && s.n*10 >= s.nextTenth*s.total {
		fmt.Fprintf(s.out, "sent %d of %d bytes (%d%%)\n", s.n, s.total, s.n*100/s.total)
		s.nextTenth = s.n*10/s.total + 1
	}
	return k, err
}

func imageList(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("citadel image list", flag.ContinueOnError)
	creds := credentialsFlag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	c, err := updateClient(creds)
	if err != nil {
		return err
	}
	r, err := c.Do(ctx, http.MethodGet, "/citadel/images", nil)
	if err != nil {
		return err
	}
	if r.Status != http.StatusOK {
		return serverRefusal("list of images", r.Status, r.Body)
	}
	var list struct {
		Value []images.Image `json:"value"`
	}
	if err := json.Unmarshal(r.Body, &list); err != nil {
		return fmt.Errorf("the server's answer: %w", err)
	}
	if len(list.Value) == 0 {
		fmt.Fprintln(out, "no images imported")
		return nil
	}
	w := tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tOS TYPE\tBOOT METHOD\tFORMAT\tSIZE\tIMPORTED\tSHA256")
	for _, img := range list.Value {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", img.Name, img.OSType, img.BootMethod, img.Format, mib(img.Size),
			img.Imported.UTC().Format(time.RFC3339), img.SHA256)
	}
	return w.Flush()
}

func imageDelete(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("citadel image delete", flag.ContinueOnError)
	creds := credentialsFlag(fs)
	names, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(names) != 1 {
		return errors.New("usage: citadel image delete NAME [--credentials FILE]")
	}
	c, err := updateClient(creds)
	if err != nil {
		return err
	}
	// Escaped whole, its slashes too: the name is one path segment.
	r, err := c.Do(ctx, http.MethodDelete, "/citadel/images/"+url.PathEscape(names[0]), nil)
	if err != nil {
		return err
	}
	if r.Status != http.StatusNoContent {
		return serverRefusal("delete", r.Status, r.Body)
	}
	fmt.Fprintf(out, "deleted image %s\n", names[0])
	return nil
}
