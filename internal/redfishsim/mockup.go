package redfishsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"mime"
	"os"
	"path"
	"path/filepath"
)

// FromMockup loads a DMTF mockup directory in short form: the resource at
// /redfish/v1/<p> is <dir>/<p>/index.json and the service root is
// <dir>/index.json. <dir>/$metadata/index.xml is served as
// /redfish/v1/$metadata and any other file as itself under /redfish/v1/,
// as the DMTF mockup server does.
//
// Two things are added so that a client can drive the mockup like a BMC:
// the InsertMedia and EjectMedia actions on virtual media that lack them,
// and a service root that owns up to supporting no query parameters. A
// mockup with UpdateService.SimpleUpdate but no TaskService gets one for
// its update tasks.
func FromMockup(dir string, opts Options) (*BMC, error) {
	res := map[string][]byte{}
	files := map[string]file{}
	err := filepath.WalkDir(dir, func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, name)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		data, err := os.ReadFile(name)
		if err != nil {
			return err
		}
		url := path.Clean(rootPath + "/" + path.Dir(rel))
		switch path.Base(rel) {
		case "index.json":
			var buf bytes.Buffer
			if err := json.Compact(&buf, data); err != nil {
				return fmt.Errorf("%s: %w", rel, err)
			}
			if _, err := decodeObject(buf.Bytes()); err != nil {
				return fmt.Errorf("%s: %w", rel, err)
			}
			res[url] = bytes.Clone(buf.Bytes())
		case "index.xml":
			files[url] = file{contentType: "application/xml", body: data}
		default:
			contentType := mime.TypeByExtension(path.Ext(rel))
			if contentType == "" {
				contentType = "application/octet-stream"
			}
			files[path.Join(rootPath, rel)] = file{contentType: contentType, body: data}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load mockup %s: %w", dir, err)
	}
	addMediaActions(res)
	if root, err := decodeObject(res[rootPath]); err == nil {
		root["ProtocolFeaturesSupported"] = noQueries
		res[rootPath] = encode(root)
	}
	b, err := newBMC(res, files, opts)
	if err != nil {
		return nil, fmt.Errorf("load mockup %s: %w", dir, err)
	}
	return b, nil
}

// addMediaActions gives each VirtualMedia resource without an InsertMedia
// action the standard InsertMedia and EjectMedia actions.
func addMediaActions(res map[string][]byte) {
	for p, body := range res {
		if !isType(body, "VirtualMedia") {
			continue
		}
		vm, err := decodeObject(body)
		if err != nil {
			continue
		}
		if actionTarget(vm, "#VirtualMedia.InsertMedia") != "" {
			continue
		}
		actions := sub(vm, "Actions")
		actions["#VirtualMedia.InsertMedia"] = map[string]any{"target": p + "/Actions/VirtualMedia.InsertMedia"}
		actions["#VirtualMedia.EjectMedia"] = map[string]any{"target": p + "/Actions/VirtualMedia.EjectMedia"}
		res[p] = encode(vm)
	}
}
