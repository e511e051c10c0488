package vm

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/citadel-cloud/citadel/internal/agentapi"
)

// A VM's cloud-init NoCloud seed is a read-only disk labelled "cidata"
// holding user-data, meta-data and, if given, network-config, which
// cloud-init (and cloudbase-init) find by the label. It is an ISO 9660
// image, as genisoimage -volid cidata -joliet makes, written here so that
// the agent needs no tool for it: the primary volume descriptor's names
// are 8.3 and the Joliet tree holds the real ones, which Linux and
// Windows read.

// seedLabel is the volume label NoCloud looks for.
const seedLabel = "cidata"

// seedFile is one file of the seed.
type seedFile struct {
	name string // its Joliet name: "user-data"
	data []byte
}

// seedFiles are the NoCloud documents of v, whose key is k: meta-data
// names it (instance-id, local-hostname) and holds its SSH keys.
func seedFiles(v agentapi.VM, k string) []seedFile {
	var meta bytes.Buffer
	fmt.Fprintf(&meta, "instance-id: %s\n", yamlString(k))
	fmt.Fprintf(&meta, "local-hostname: %s\n", yamlString(v.Name))
	if len(v.SSHPublicKeys) > 0 {
		meta.WriteString("public-keys:\n")
		for _, key := range v.SSHPublicKeys {
			fmt.Fprintf(&meta, "  - %s\n", yamlString(key))
		}
	}
	user := v.UserData
	if user == "" {
		user = "#cloud-config\n" // cloud-init needs the file; an empty config does nothing
	}
	files := []seedFile{{"meta-data", meta.Bytes()}, {"user-data", []byte(user)}}
	if v.NetworkData != "" {
		files = append(files, seedFile{"network-config", []byte(v.NetworkData)})
	}
	return files
}

// yamlString quotes s as a YAML double-quoted scalar, escaping what YAML
// does not allow in one (control characters) or would fold (line
// breaks). Invalid UTF-8 becomes U+FFFD.
func yamlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r >= 0x20 && r <= 0x7e, r >= 0xa0 && r <= 0xfffd && r != 0x2028 && r != 0x2029, r >= 0x10000:
			b.WriteRune(r)
		default:
			fmt.Fprintf(&b, "\\u%04x", r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// ISO 9660 (ECMA-119) and Joliet. A seed has one directory, the root,
// and a few small files, which is all this writes.
const (
	sector = 2048
	// The image's sectors: 16 for the system area, then these.
	sectorPVD      = 16 // the primary volume descriptor
	sectorSVD      = 17 // the Joliet supplementary one
	sectorEnd      = 18 // the set terminator
	sectorPathL    = 19 // the primary tree's path tables, little- and big-endian
	sectorPathM    = 20
	sectorJolietL  = 21 // the Joliet tree's
	sectorJolietM  = 22
	sectorRoot     = 23 // the primary tree's root directory
	sectorJoliet   = 24 // the Joliet tree's
	sectorFiles    = 25 // the files' data, each from a sector's start
	pathTableBytes = 10 // the root's record alone
	flagDirectory  = 2
	padding        = 150 // sectors of zeros at the end
)

// buildISO returns an ISO 9660 image labelled label holding files in its
// root, with Joliet names. A name is 1 to 64 characters; the root's
// records must fit in a sector, which a few short names do.
func buildISO(label string, files []seedFile, now time.Time) ([]byte, error) {
	type placed struct {
		seedFile
		sector uint32
	}
	var all []placed
	next := uint32(sectorFiles)
	for _, f := range files {
		if len(f.name) == 0 || len(f.name) > 64 || slices.ContainsFunc(all, func(p placed) bool { return p.name == f.name }) {
			return nil, fmt.Errorf("iso9660: file name %q: want 1 to 64 characters, unique", f.name)
		}
		all = append(all, placed{f, next})
		next += uint32((len(f.data) + sector - 1) / sector)
	}
	if len(all) > 100 {
		return nil, fmt.Errorf("iso9660: %d files: want at most 100", len(all))
	}
	// Padding, as genisoimage adds: some readers read 68 KiB or more of
	// a volume when they probe it (busybox's findfs), and fail on less.
	total := next + padding
	img := make([]byte, int(total)*sector)
	at := func(s uint32) []byte { return img[int(s)*sector : int(s+1)*sector] }

	// Each tree's root directory: ".", ".." and the files in the order
	// of their identifiers.
	stamp := dirTime(now)
	for _, tree := range []struct {
		root   uint32
		joliet bool
	}{{sectorRoot, false}, {sectorJoliet, true}} {
		type entry struct {
			id     []byte
			sector uint32
			size   int
		}
		var entries []entry
		for i, f := range all {
			id := []byte(shortName(f.name, i))
			if tree.joliet {
				id = ucs2(f.name + ";1")
			}
			entries = append(entries, entry{id, f.sector, len(f.data)})
		}
		slices.SortFunc(entries, func(a, b entry) int { return bytes.Compare(a.id, b.id) })
		b := dirRecord(nil, []byte{0}, tree.root, sector, flagDirectory, stamp)
		b = dirRecord(b, []byte{1}, tree.root, sector, flagDirectory, stamp)
		for _, e := range entries {
			b = dirRecord(b, e.id, e.sector, uint32(e.size), 0, stamp)
		}
		if len(b) > sector {
			return nil, fmt.Errorf("iso9660: %d files do not fit in one directory sector", len(all))
		}
		copy(at(tree.root), b)
	}
	for _, f := range all {
		copy(img[int(f.sector)*sector:], f.data)
	}
	for _, p := range []struct{ l, m, root uint32 }{{sectorPathL, sectorPathM, sectorRoot}, {sectorJolietL, sectorJolietM, sectorJoliet}} {
		pathRecord(at(p.l), p.root, binary.LittleEndian)
		pathRecord(at(p.m), p.root, binary.BigEndian)
	}

	volumeDescriptor(at(sectorPVD), 1, label, total, sectorPathL, sectorPathM, sectorRoot, now)
	volumeDescriptor(at(sectorSVD), 2, label, total, sectorJolietL, sectorJolietM, sectorJoliet, now)
	end := at(sectorEnd)
	end[0] = 255
	copy(end[1:], "CD001")
	end[6] = 1
	return img, nil
}

// shortName is the name of files[i] as a level 1 file identifier: at
// most six upper case letters, digits and underscores, then i in two
// digits, which keeps it unique; no extension, version 1.
func shortName(name string, i int) string {
	var b []byte
	for _, r := range strings.ToUpper(name) {
		if len(b) == 6 {
			break
		}
		if (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			b = append(b, byte(r))
		} else {
			b = append(b, '_')
		}
	}
	return fmt.Sprintf("%s%02d.;1", b, i)
}

// ucs2 is s in UCS-2, big-endian, as Joliet names are.
func ucs2(s string) []byte {
	var b []byte
	for _, u := range utf16.Encode([]rune(s)) {
		b = binary.BigEndian.AppendUint16(b, u)
	}
	return b
}

// both16 and both32 write v both-endian, as ISO 9660 wants most numbers.
func both16(b []byte, v uint16) {
	binary.LittleEndian.PutUint16(b, v)
	binary.BigEndian.PutUint16(b[2:], v)
}

func both32(b []byte, v uint32) {
	binary.LittleEndian.PutUint32(b, v)
	binary.BigEndian.PutUint32(b[4:], v)
}

// dirTime is t as a directory record's date: years since 1900, month,
// day, hour, minute, second and the offset from UTC in 15 minutes.
func dirTime(t time.Time) [7]byte {
	t = t.UTC()
	return [7]byte{byte(t.Year() - 1900), byte(t.Month()), byte(t.Day()), byte(t.Hour()), byte(t.Minute()), byte(t.Second()), 0}
}

// dirRecord appends a directory record for the file or directory id.
func dirRecord(b, id []byte, extent, size uint32, flags byte, stamp [7]byte) []byte {
	n := 33 + len(id)
	n += n % 2 // records have an even length
	r := make([]byte, n)
	r[0] = byte(n)
	both32(r[2:], extent)
	both32(r[10:], size)
	copy(r[18:25], stamp[:])
	r[25] = flags
	both16(r[28:], 1) // the volume sequence number
	r[32] = byte(len(id))
	copy(r[33:], id)
	return append(b, r...)
}

// pathRecord writes a path table of the root alone.
func pathRecord(b []byte, root uint32, order binary.ByteOrder) {
	b[0] = 1 // the length of the root's identifier, a 0 byte
	order.PutUint32(b[2:], root)
	order.PutUint16(b[6:], 1) // its parent: itself
}

// volumeDescriptor writes a primary (kind 1) or Joliet supplementary
// (kind 2) volume descriptor.
func volumeDescriptor(b []byte, kind byte, label string, total, pathL, pathM, root uint32, now time.Time) {
	text := func(field []byte, s string) { // a space-padded text field
		if kind == 2 {
			for i := 0; i+1 < len(field); i += 2 {
				field[i], field[i+1] = 0, ' '
			}
			copy(field, ucs2(s))
			return
		}
		for i := range field {
			field[i] = ' '
		}
		copy(field, s)
	}
	b[0] = kind
	copy(b[1:], "CD001")
	b[6] = 1
	text(b[8:40], "LINUX")
	text(b[40:72], label)
	both32(b[80:], total)
	if kind == 2 {
		copy(b[88:], "%/E") // UCS-2 level 3
	}
	both16(b[120:], 1) // the volume set's size
	both16(b[124:], 1) // this volume's number in it
	both16(b[128:], sector)
	both32(b[132:], pathTableBytes)
	binary.LittleEndian.PutUint32(b[140:], pathL)
	binary.BigEndian.PutUint32(b[148:], pathM)
	copy(b[156:190], dirRecord(nil, []byte{0}, root, sector, flagDirectory, dirTime(now)))
	for _, f := range [][2]int{{190, 318}, {318, 446}, {446, 574}, {574, 702}, {702, 739}, {739, 776}, {776, 813}} {
		text(b[f[0]:f[1]], "") // volume set, publisher, preparer, application, copyright, abstract, bibliography
	}
	text(b[574:702], "CITADEL")
	stamp := now.UTC().Format("20060102150405") + "00"
	unset := "0000000000000000"
	for i, s := range []string{stamp, stamp, unset, unset} { // created, modified, expires, effective
		copy(b[813+17*i:], s)
	}
	b[881] = 1 // the file structure's version
}
