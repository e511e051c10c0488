package vm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"
)

// isoImage is what readISO finds in an ISO 9660 image.
type isoImage struct {
	Label, JolietLabel string
	Files              map[string]string // by Joliet name, without ";1"
	Short              map[string]string // by the primary tree's name
}

// readISO reads an image that buildISO wrote, the way Linux does: the
// volume descriptors from sector 16, then each tree's root directory.
func readISO(img []byte) (*isoImage, error) {
	out := &isoImage{Files: map[string]string{}, Short: map[string]string{}}
	if len(img)%sector != 0 {
		return nil, fmt.Errorf("%d bytes: not whole sectors", len(img))
	}
	for s := 16; ; s++ {
		if (s+1)*sector > len(img) {
			return nil, errors.New("no volume descriptor set terminator")
		}
		d := img[s*sector : (s+1)*sector]
		if string(d[1:6]) != "CD001" || d[6] != 1 {
			return nil, fmt.Errorf("sector %d: not a volume descriptor", s)
		}
		if d[0] == 255 {
			break
		}
		if got := binary.LittleEndian.Uint32(d[80:]); int(got)*sector != len(img) {
			return nil, fmt.Errorf("volume space of %d sectors, image of %d", got, len(img)/sector)
		}
		joliet := d[0] == 2 && string(d[88:91]) == "%/E"
		if d[0] != 1 && !joliet {
			continue
		}
		files := out.Short
		if joliet {
			out.JolietLabel = strings.TrimRight(fromUCS2(d[40:72]), " ")
			files = out.Files
		} else {
			out.Label = strings.TrimRight(string(d[40:72]), " ")
		}
		root := d[156:190]
		extent, size := binary.LittleEndian.Uint32(root[2:]), binary.LittleEndian.Uint32(root[10:])
		if int(extent)*sector+int(size) > len(img) {
			return nil, fmt.Errorf("root directory at sector %d of %d bytes: outside the image", extent, size)
		}
		dir := img[int(extent)*sector : int(extent)*sector+int(size)]
		for i := 0; i < len(dir); {
			n := int(dir[i])
			if n == 0 { // the rest of the sector is padding
				i = (i/sector + 1) * sector
				continue
			}
			if n < 34 || i+n > len(dir) || 33+int(dir[i+32]) > n {
				return nil, fmt.Errorf("root directory: bad record at %d", i)
			}
			r := dir[i : i+n]
			i += n
			if r[25]&flagDirectory != 0 {
				continue
			}
			id := r[33 : 33+int(r[32])]
			name := string(id)
			if joliet {
				name = strings.TrimSuffix(fromUCS2(id), ";1")
			}
			at, length := int(binary.LittleEndian.Uint32(r[2:])), int(binary.LittleEndian.Uint32(r[10:]))
			if binary.BigEndian.Uint32(r[6:]) != uint32(at) || binary.BigEndian.Uint32(r[14:]) != uint32(length) {
				return nil, fmt.Errorf("file %q: its both-endian numbers differ", name)
			}
			if at*sector+length > len(img) {
				return nil, fmt.Errorf("file %q: outside the image", name)
			}
			files[name] = string(img[at*sector : at*sector+length])
		}
	}
	return out, nil
}

func fromUCS2(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.BigEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u))
}

func TestSeed(t *testing.T) {
	v := testVM("vm-1")
	v.UserData = "#cloud-config\nruncmd: [echo hi]\n"
	v.NetworkData = "version: 2\nethernets: {}\n"
	v.SSHPublicKeys = []string{"ssh-ed25519 AAAAC3Nza test@example", `ssh-rsa AAAA "quoted": yes`}
	img, err := buildISO(seedLabel, seedFiles(v, key(v.ID)), time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	got, err := readISO(img)
	if err != nil {
		t.Fatalf("readISO: %v", err)
	}
	meta := fmt.Sprintf("instance-id: %q\nlocal-hostname: \"vm-1\"\npublic-keys:\n  - \"ssh-ed25519 AAAAC3Nza test@example\"\n  - \"ssh-rsa AAAA \\\"quoted\\\": yes\"\n", key(v.ID))
	want := &isoImage{
		Label: "cidata", JolietLabel: "cidata",
		Files: map[string]string{"meta-data": meta, "network-config": v.NetworkData, "user-data": v.UserData},
		Short: map[string]string{"META_D00.;1": meta, "USER_D01.;1": v.UserData, "NETWOR02.;1": v.NetworkData},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the seed (-want +got):\n%s", diff)
	}

	var doc map[string]any
	if err := yaml.Unmarshal([]byte(got.Files["meta-data"]), &doc); err != nil {
		t.Fatalf("meta-data is no YAML: %v", err)
	}
	wantDoc := map[string]any{"instance-id": key(v.ID), "local-hostname": "vm-1", "public-keys": []any{v.SSHPublicKeys[0], v.SSHPublicKeys[1]}}
	if diff := cmp.Diff(wantDoc, doc); diff != "" {
		t.Errorf("meta-data (-want +got):\n%s", diff)
	}
}

func TestSeedWithoutUserData(t *testing.T) {
	v := testVM("bare")
	got, err := readISOOf(t, seedFiles(v, key(v.ID)))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got.Files["network-config"]; ok {
		t.Errorf("a seed without network data has a network-config")
	}
	if got.Files["user-data"] != "#cloud-config\n" {
		t.Errorf("user-data = %q, want an empty cloud-config", got.Files["user-data"])
	}
}

func TestBuildISOErrors(t *testing.T) {
	for _, files := range [][]seedFile{
		{{name: ""}},
		{{name: strings.Repeat("x", 65)}},
		{{name: "a"}, {name: "a"}},
		make([]seedFile, 101),
	} {
		if _, err := buildISO(seedLabel, files, time.Now()); err == nil {
			t.Errorf("buildISO(%d files, the first %q) = nil error, want one", len(files), files[0].name)
		}
	}
}

func readISOOf(t *testing.T, files []seedFile) (*isoImage, error) {
	t.Helper()
	img, err := buildISO(seedLabel, files, time.Now())
	if err != nil {
		return nil, err
	}
	return readISO(img)
}

// FuzzSeed checks that any VM's documents come back from its seed as
// they went in, across sectors, and that meta-data stays YAML that names
// the VM.
func FuzzSeed(f *testing.F) {
	f.Add("vm-1", "#cloud-config\n", "", "ssh-ed25519 AAAA x")
	f.Add("a\"b\\c\n", strings.Repeat("x", 5000), "version: 2\n", "key: \u2028 <&>")
	f.Fuzz(func(t *testing.T, name, userData, networkData, sshKey string) {
		v := testVM("fuzz")
		v.Name, v.UserData, v.NetworkData, v.SSHPublicKeys = name, userData, networkData, []string{sshKey}
		got, err := readISOOf(t, seedFiles(v, key(v.ID)))
		if err != nil {
			t.Fatal(err)
		}
		if userData != "" && got.Files["user-data"] != userData {
			t.Errorf("user-data = %q, want %q", got.Files["user-data"], userData)
		}
		if networkData != "" && got.Files["network-config"] != networkData {
			t.Errorf("network-config = %q, want %q", got.Files["network-config"], networkData)
		}
		var doc struct {
			Hostname string   `json:"local-hostname"`
			Keys     []string `json:"public-keys"`
		}
		if err := yaml.Unmarshal([]byte(got.Files["meta-data"]), &doc); err != nil {
			t.Fatalf("meta-data %q is no YAML: %v", got.Files["meta-data"], err)
		}
		want := string([]rune(name)) // each byte of invalid UTF-8 a U+FFFD
		if doc.Hostname != want || len(doc.Keys) != 1 {
			t.Errorf("meta-data %q reads as hostname %q, keys %q; want %q and one key", got.Files["meta-data"], doc.Hostname, doc.Keys, want)
		}
		if !bytes.Equal([]byte(got.Label), []byte(seedLabel)) {
			t.Errorf("label %q, want %q", got.Label, seedLabel)
		}
	})
}
