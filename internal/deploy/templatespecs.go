package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/identity"
	"github.com/citadel-cloud/citadel/internal/resource"
	"github.com/citadel-cloud/citadel/internal/store"
	"github.com/citadel-cloud/citadel/internal/template"
)

// Template specs (Microsoft.Resources/templateSpecs and their versions)
// keep templates inside the boundary: a version holds a main template and
// the linked templates its relative templateLinks name, as `az ts create`
// packs them. A deployment from a version (templateLink.id) takes a copy
// of both when it is accepted, so what it deploys cannot change under it.

// templateSpecAPIVersions are the versions of the template spec types:
// az 2.45 sends 2021-05-01.
var templateSpecAPIVersions = []string{"2022-02-01", "2021-05-01", "2021-03-01-preview", "2019-06-01-preview"}

const templateSpecVersionsType = "Microsoft.Resources/templateSpecs/versions"

// templateSpec is a template spec's properties.
type templateSpec struct {
	Description string         `json:"description"`
	DisplayName string         `json:"displayName"`
	Metadata    map[string]any `json:"metadata"`
}

// templateSpecVersion is a version's properties.
type templateSpecVersion struct {
	Description      string           `json:"description"`
	Metadata         map[string]any   `json:"metadata"`
	MainTemplate     json.RawMessage  `json:"mainTemplate"`
	LinkedTemplates  []linkedTemplate `json:"linkedTemplates"`
	UIFormDefinition map[string]any   `json:"uiFormDefinition"`
}

// linkedTemplate is one template a version's templates link to by
// relativePath; Path is relative to the main template's directory.
type linkedTemplate struct {
	Path     string          `json:"path"`
	Template json.RawMessage `json:"template"`
}

var specNamePattern = regexp.MustCompile(`^[-\w._()]{1,90}$`)

func (p *Provider) registerTemplateSpecs() {
	p.svc.Register(&resource.Type{
		Namespace:   "Microsoft.Resources",
		Name:        "templateSpecs",
		APIVersions: templateSpecAPIVersions,
		Scope:       resource.ScopeResourceGroup,
		Tracked:     true,
		NamePattern: specNamePattern,
		NameRule:    "It must have 1 to 90 letters, digits, '-', '_', '.', '(' or ')'.",
		ReadOnly:    []string{"versions"},
		Validate:    validateTemplateSpec,
		Computed:    p.specVersions,
	}, &resource.Type{
		Namespace:   "Microsoft.Resources",
		Name:        "templateSpecs/versions",
		APIVersions: templateSpecAPIVersions,
		Scope:       resource.ScopeResourceGroup,
		Tracked:     true,
		NamePattern: specNamePattern,
		NameRule:    "It must have 1 to 90 letters, digits, '-', '_', '.', '(' or ')'.",
		Validate:    validateTemplateSpecVersion,
	})
}

func validateTemplateSpec(_ context.Context, w *resource.Write) error {
	var s templateSpec
	if err := resource.DecodeProperties(w.New, &s); err != nil {
		return err
	}
	switch {
	case len(s.Description) > 4096:
		return arm.FieldError("properties.description", "The description has %d characters; at most 4096 are allowed.", len(s.Description))
	case len(s.DisplayName) > 64:
		return arm.FieldError("properties.displayName", "The display name has %d characters; at most 64 are allowed.", len(s.DisplayName))
	}
	return nil
}

// specVersions shows a template spec's versions, as az ts show reads
// them: by name, with their description and times.
func (p *Provider) specVersions(ctx context.Context, r *resource.Resource) error {
	id, err := arm.ParseID(r.ID)
	if err != nil {
		return err
	}
	versions, err := p.svc.Resources(ctx, id, templateSpecVersionsType)
	if err != nil {
		return err
	}
	shown := map[string]any{}
	for _, v := range versions {
		info := map[string]any{}
		if d, ok := v.Properties["description"].(string); ok && d != "" {
			info["description"] = d
		}
		if v.SystemData != nil {
			info["timeCreated"] = v.SystemData.CreatedAt.Format(time.RFC3339Nano)
			info["timeModified"] = v.SystemData.LastModifiedAt.Format(time.RFC3339Nano)
		}
		shown[v.Name] = info
	}
	if r.Properties == nil {
		r.Properties = map[string]any{}
	}
	r.Properties["versions"] = shown
	return nil
}

// validateTemplateSpecVersion checks that the main template and every
// linked template are templates, and that the linked templates' paths
// are relative, inside the version and distinct. Paths are stored with
// '/' separators (az on Windows packs them with '\').
func validateTemplateSpecVersion(_ context.Context, w *resource.Write) error {
	var v templateSpecVersion
	if err := resource.DecodeProperties(w.New, &v); err != nil {
		return err
	}
	if len(v.Description) > 4096 {
		return arm.FieldError("properties.description", "The description has %d characters; at most 4096 are allowed.", len(v.Description))
	}
	if len(v.MainTemplate) == 0 || string(v.MainTemplate) == "null" {
		return arm.FieldError("properties.mainTemplate", "A template spec version needs a main template.")
	}
	if _, err := template.Parse(v.MainTemplate); err != nil {
		return templateError("properties.mainTemplate", err)
	}
	seen := map[string]bool{}
	var paths []any
	for i, l := range v.LinkedTemplates {
		field := fmt.Sprintf("properties.linkedTemplates[%d]", i)
		clean, ok := artifactPath(l.Path)
		if !ok {
			return arm.FieldError(field+".path", "The path '%s' must be relative to the main template and stay inside the template spec version.", l.Path)
		}
		if seen[strings.ToLower(clean)] {
			return arm.FieldError(field+".path", "The path '%s' is given twice.", l.Path)
		}
		seen[strings.ToLower(clean)] = true
		if _, err := template.Parse(l.Template); err != nil {
			return templateError(field+".template", err)
		}
		var t any
		if err := json.Unmarshal(l.Template, &t); err != nil {
			return arm.FieldError(field+".template", "The template is not valid JSON.")
		}
		paths = append(paths, map[string]any{"path": clean, "template": t})
	}
	if paths != nil {
		w.New.Properties["linkedTemplates"] = paths
	}
	return nil
}

// templateError names where in a template spec version a template is
// invalid.
func templateError(field string, err error) *arm.Error {
	e := invalidTemplate(err)
	if e.Target == "" {
		e.Target = field
	} else {
		e.Target = field + "." + e.Target
	}
	return e
}

// artifactPath cleans a linked template's path: relative, with '/'
// separators, not leaving the version's root.
func artifactPath(p string) (string, bool) {
	p = strings.ReplaceAll(p, `\`, "/")
	if p == "" || strings.HasPrefix(p, "/") || strings.Contains(p, ":") {
		return "", false
	}
	clean := path.Clean(p)
	if clean == "." || clean == ".." || strings.HasPrefix(clean, "../") {
		return "", false
	}
	return clean, true
}

// specLocation is where Expand finds a template spec version's main
// template: the version's ID followed by '/', the directory its linked
// templates' paths start from.
func specLocation(versionID arm.ID) string { return versionID.String() + "/" }

// splitSpecLocation reads a location inside a template spec version: the
// version's ID and the linked template's path ("" for the main
// template). ok is false for a location that is not inside a version.
func splitSpecLocation(loc string) (versionID arm.ID, artifact string, ok bool) {
	segs := strings.Split(loc, "/")
	// …/providers/Microsoft.Resources/templateSpecs/{spec}/versions/{version}/{artifact}
	for k := 0; k+6 < len(segs); k++ {
		if strings.EqualFold(segs[k], "providers") && strings.EqualFold(segs[k+1], "Microsoft.Resources") &&
			strings.EqualFold(segs[k+2], "templateSpecs") && strings.EqualFold(segs[k+4], "versions") {
			id, err := arm.ParseID(strings.Join(segs[:k+6], "/"))
			if err != nil || !strings.EqualFold(id.Type(), templateSpecVersionsType) {
				return arm.ID{}, "", false
			}
			return id, strings.Join(segs[k+6:], "/"), true
		}
	}
	return arm.ID{}, "", false
}

// loadLinked is the deployment's template.Options.Load: it reads the
// templates of template spec versions, the deployed version's from its
// snapshot and any other's from the store. Nothing outside the boundary
// can be read.
func (p *Provider) loadLinked(ctx context.Context, r *request, loc string) ([]byte, error) {
	id, artifact, ok := splitSpecLocation(loc)
	if !ok {
		if u, err := url.Parse(loc); err == nil && u.IsAbs() {
			return nil, errors.New("the boundary has no connection to the outside: deploy the linked templates in a template spec version")
		}
		if r.spec != nil {
			return nil, fmt.Errorf("the path leaves the template spec version %s", r.spec.id)
		}
		return nil, errors.New("a relative path resolves only in a deployment of a template spec version (templateLink.id), which holds the linked templates")
	}
	s := r.spec
	if s == nil || !strings.EqualFold(s.id.String(), id.String()) {
		var err error
		if s, err = p.readSpec(ctx, id, r.who); err != nil {
			return nil, err
		}
	}
	return s.template(artifact)
}

// specTemplates are the templates of one template spec version: its main
// template and its linked templates by lower-cased path.
type specTemplates struct {
	id     arm.ID
	main   json.RawMessage
	linked map[string]json.RawMessage
}

// readSpec reads a template spec version's templates from the store, as
// who: who must be allowed to read the version.
func (p *Provider) readSpec(ctx context.Context, id arm.ID, who identity.Principal) (*specTemplates, error) {
	if !strings.EqualFold(id.Type(), templateSpecVersionsType) {
		return nil, arm.FieldError("properties.templateLink.id", "'%s' is not a template spec version: a templateLink's id names one, '…/providers/Microsoft.Resources/templateSpecs/{name}/versions/{version}'.", id)
	}
	if _, err := p.authz.Authorize(subject(who), templateSpecVersionsType+"/read", id.String()); err != nil {
		return nil, refusal(err, id.String())
	}
	r, err := p.svc.Lookup(ctx, id)
	if err != nil {
		var ae *arm.Error
		if errors.Is(err, store.ErrNotFound) || errors.As(err, &ae) && ae.Status == http.StatusNotFound {
			return nil, arm.Errorf(http.StatusNotFound, "TemplateSpecVersionNotFound", "The template spec version '%s' was not found.", id)
		}
		return nil, err
	}
	var v templateSpecVersion
	if err := resource.DecodeProperties(r, &v); err != nil {
		return nil, err
	}
	s := &specTemplates{id: id, main: v.MainTemplate, linked: map[string]json.RawMessage{}}
	for _, l := range v.LinkedTemplates {
		s.linked[strings.ToLower(l.Path)] = l.Template
	}
	return s, nil
}

// template is the template at a location inside the version: the main
// template for "", a linked template for its path.
func (s *specTemplates) template(artifact string) ([]byte, error) {
	if artifact == "" {
		return s.main, nil
	}
	clean, ok := artifactPath(artifact)
	if !ok {
		return nil, fmt.Errorf("the path '%s' leaves the template spec version %s", artifact, s.id)
	}
	t, ok := s.linked[strings.ToLower(clean)]
	if !ok {
		return nil, fmt.Errorf("the template spec version %s has no linked template '%s'", s.id, clean)
	}
	return t, nil
}

// snapshot is the version as a deployment keeps it: its ID, main template
// and linked templates, in the deployment's hidden properties.
func (s *specTemplates) snapshot() (map[string]any, error) {
	linked := map[string]any{}
	for k, v := range s.linked {
		linked[k] = v
	}
	b, err := json.Marshal(map[string]any{"id": s.id.String(), "main": s.main, "linked": linked})
	if err != nil {
		return nil, err
	}
	var out map[string]any
	return out, json.Unmarshal(b, &out)
}

// specFromSnapshot reads a snapshot back.
func specFromSnapshot(raw any) (*specTemplates, error) {
	b, err := json.Marshal(raw)
	if err != nil {
		return nil, err
	}
	var snap struct {
		ID     string                     `json:"id"`
		Main   json.RawMessage            `json:"main"`
		Linked map[string]json.RawMessage `json:"linked"`
	}
	if err := json.Unmarshal(b, &snap); err != nil {
		return nil, err
	}
	id, err := arm.ParseID(snap.ID)
	if err != nil {
		return nil, err
	}
	return &specTemplates{id: id, main: snap.Main, linked: snap.Linked}, nil
}
