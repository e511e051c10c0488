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
	c, err := updateClient(creds)
	if err != nil {
		return err
	}
	query := url.Values{"name": {*name}, "osType": {*osType}, "bootMethod": {*bootMethod}}
	status, answer, err := upload(ctx, c, files[0], "/citadel/images?"+query.Encode(), "application/octet-stream", server.MaxImageSize, progress, "")
	if err != nil {
		return err
	}
	if status != http.StatusCreated {
		return serverRefusal("image", status, answer)
	}
	var img images.Image
	if err := json.Unmarshal(answer, &img); err != nil {
		return fmt.Errorf("the server's answer: %w", err)
	}
	fmt.Fprintf(out, "imported image %s: %s, %s, %s, %s, sha256:%s\n", img.Name, img.OSType, img.BootMethod, img.Format, mib(img.Size), img.SHA256)
	return nil
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
	list, err := operatorList[images.Image](ctx, c, "/citadel/images", "list of images")
	if err != nil {
		return err
	}
	if len(list) == 0 {
		fmt.Fprintln(out, "no images imported")
		return nil
	}
	w := tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tOS TYPE\tBOOT METHOD\tFORMAT\tSIZE\tIMPORTED\tSHA256")
	for _, img := range list {
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
