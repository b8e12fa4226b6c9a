// ssaoracle runs server-side-apply cases through structured-merge-diff, the library inside
// kube-apiserver (Debian's golang-k8s-sigs-structured-merge-diff-dev), so the test API server's
// own apply model (testdata/kubeapi/apply.py) can be compared with the real engine.
//
// Input (stdin): [{"name": N, "steps": [{"op": "apply"|"update", "manager": M, "force": bool,
// "object": {...}}]}]. Output (stdout): [{"name": N, "steps": [{"conflicts": [[manager, path]],
// "object": {...}, "managers": {manager: [path, ...]}}]}]. Objects use the deduced schema (maps
// granular, lists atomic), as a CR without a schema; a conflicting step leaves the state unchanged.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"

	"sigs.k8s.io/structured-merge-diff/v4/fieldpath"
	"sigs.k8s.io/structured-merge-diff/v4/merge"
	"sigs.k8s.io/structured-merge-diff/v4/typed"
	"sigs.k8s.io/structured-merge-diff/v4/value"
)

type step struct {
	Op      string          `json:"op"`
	Manager string          `json:"manager"`
	Force   bool            `json:"force"`
	Object  json.RawMessage `json:"object"`
}

type kase struct {
	Name   string `json:"name"`
	Schema string `json:"schema"` // "" (deduced) or "typed" (typedSchema below)
	Steps  []step `json:"steps"`
}

// typedSchema: an associative list keyed by name and a set list, as CRDs declare them with
// x-kubernetes-list-type map/set (check.py gives the model the same schema in OpenAPI form).
const typedSchema = `types:
- name: root
  map:
    fields:
    - name: items
      type:
        list:
          elementType: {namedType: item}
          elementRelationship: associative
          keys: [name]
    - name: tags
      type:
        list:
          elementType: {scalar: string}
          elementRelationship: associative
    - name: note
      type: {scalar: string}
- name: item
  map:
    fields:
    - name: name
      type: {scalar: string}
    - name: value
      type: {scalar: numeric}
    - name: extra
      type: {scalar: string}
`

type stepResult struct {
	Conflicts [][2]string         `json:"conflicts"`
	Object    interface{}         `json:"object"`
	Managers  map[string][]string `json:"managers"`
}

type caseResult struct {
	Name  string       `json:"name"`
	Steps []stepResult `json:"steps"`
}

type identity struct{}

func (identity) Convert(o *typed.TypedValue, _ fieldpath.APIVersion) (*typed.TypedValue, error) {
	return o, nil
}
func (identity) IsMissingVersionError(error) bool { return false }

func die(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "ssaoracle: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	var cases []kase
	if err := json.NewDecoder(os.Stdin).Decode(&cases); err != nil {
		die("cannot read the cases: %v", err)
	}
	parser, err := typed.NewParser(typed.YAMLObject(typedSchema))
	if err != nil {
		die("bad built-in schema: %v", err)
	}
	up := &merge.Updater{Converter: identity{}}
	out := []caseResult{}
	for _, c := range cases {
		pt := typed.DeducedParseableType
		if c.Schema == "typed" {
			pt = parser.Type("root")
		}
		live, err := pt.FromYAML(typed.YAMLObject("{}"))
		if err != nil {
			die("%s: %v", c.Name, err)
		}
		managers := fieldpath.ManagedFields{}
		res := caseResult{Name: c.Name}
		for i, s := range c.Steps {
			obj, err := pt.FromYAML(typed.YAMLObject(s.Object))
			if err != nil {
				die("%s step %d: %v", c.Name, i, err)
			}
			r := stepResult{Conflicts: [][2]string{}}
			var next *typed.TypedValue
			var mgrs fieldpath.ManagedFields
			switch s.Op {
			case "apply":
				next, mgrs, err = up.Apply(live, obj, "v1", managers.Copy(), s.Manager, s.Force)
			case "update":
				next, mgrs, err = up.Update(live, obj, "v1", managers.Copy(), s.Manager)
			default:
				die("%s step %d: unknown op %q", c.Name, i, s.Op)
			}
			if conflicts, ok := err.(merge.Conflicts); ok {
				for _, cf := range conflicts {
					r.Conflicts = append(r.Conflicts, [2]string{cf.Manager, cf.Path.String()})
				}
			} else if err != nil {
				die("%s step %d: %v", c.Name, i, err)
			} else {
				if next != nil {
					live = next
				}
				managers = mgrs
			}
			js, err := value.ToJSON(live.AsValue())
			if err != nil {
				die("%s step %d: %v", c.Name, i, err)
			}
			r.Object = json.RawMessage(js)
			r.Managers = map[string][]string{}
			for m, vs := range managers {
				paths := []string{}
				vs.Set().Iterate(func(p fieldpath.Path) { paths = append(paths, p.String()) })
				sort.Strings(paths)
				r.Managers[m] = paths
			}
			res.Steps = append(res.Steps, r)
		}
		out = append(out, res)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", " ")
	if err := enc.Encode(out); err != nil {
		die("%v", err)
	}
}
