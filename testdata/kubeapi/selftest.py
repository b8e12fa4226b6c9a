#!/usr/bin/env python3
"""Unit checks of the Kubernetes API test server's semantics, run in process (no HTTP, no
kubectl): server-side apply ownership and conflicts, Update ownership transfer, client-written
managedFields, patches, generation/resourceVersion rules, dry-run, immutable fields, deletion,
CR schemas, selectors and the watch history window.

Why: tests/integration/test_kubeapi.sh checks the wire shape against kubectl; these pin the
rules berth relies on, one behaviour per test, so a regression names itself.
Run: python3 testdata/kubeapi/selftest.py  (also run by test_kubeapi.sh)
"""
import copy
import json
import os
import sys
import unittest

sys.dont_write_bytecode = True  # keep testdata/ free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import api  # noqa: E402
import apierrors as E  # noqa: E402
import apply as A  # noqa: E402
from storage import match_labels, parse_label_selector  # noqa: E402


def cm(name="c", data=None, **meta):
    md = {"name": name}
    md.update(meta)
    o = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": md}
    if data is not None:
        o["data"] = data
    return o


def deploy(name="web", replicas=None, image="nginx:1", app="web", ports=None):
    c = {"name": "app", "image": image}
    if ports is not None:
        c["ports"] = ports
    spec = {"selector": {"matchLabels": {"app": app}},
            "template": {"metadata": {"labels": {"app": app}}, "spec": {"containers": [c]}}}
    if replicas is not None:
        spec["replicas"] = replicas
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}, "spec": spec}


class Base(unittest.TestCase):
    def setUp(self):
        s = api.Settings()
        s.controllers = False
        self.state = api.State(s)

    def req(self, method, path, body=None, ctype="application/json", **query):
        raw = json.dumps(body).encode() if body is not None else b""
        return api.handle(self.state, api.Request(method, path, {k: str(v) for k, v in query.items()}, raw,
                                                  ctype, "application/json", "selftest/1.0"))

    def ok(self, method, path, body=None, ctype="application/json", **query):
        code, obj = self.req(method, path, body, ctype, **query)
        self.assertIn(code, (200, 201), obj)
        return obj

    def err(self, code, method, path, body=None, ctype="application/json", **query):
        with self.assertRaises(E.StatusError) as cm_:
            self.req(method, path, body, ctype, **query)
        self.assertEqual(cm_.exception.code, code, cm_.exception.status())
        return cm_.exception

    def apply(self, path, body, manager, **query):
        return self.ok("PATCH", path, body, "application/apply-patch+yaml", fieldManager=manager, **query)

    def managers(self, obj):
        return {(e["manager"], e["operation"], e.get("subresource", "")): A.decode_fields(e["fieldsV1"])
                for e in obj["metadata"].get("managedFields") or []}


CM = "/api/v1/namespaces/default/configmaps"
DEP = "/apis/apps/v1/namespaces/default/deployments"


class ServerSideApply(Base):
    def test_apply_creates_with_201_and_owns_only_applied_fields(self):
        code, o = self.req("PATCH", CM + "/c", cm(data={"a": "1"}), "application/apply-patch+yaml", fieldManager="m")
        self.assertEqual(code, 201)
        self.assertEqual(self.managers(o), {("m", "Apply", ""): {(("f", "data"), ("f", "a"))}})

    def test_apply_without_field_manager_is_400(self):
        e = self.err(400, "PATCH", CM + "/c", cm(data={"a": "1"}), "application/apply-patch+yaml")
        self.assertIn("fieldManager", e.message)

    def test_apply_with_managed_fields_in_body_is_400(self):
        body = cm(data={"a": "1"}, managedFields=[{"manager": "x"}])
        e = self.err(400, "PATCH", CM + "/c", body, "application/apply-patch+yaml", fieldManager="m")
        self.assertIn("managedFields must be nil", e.message)

    def test_other_manager_changing_a_field_conflicts_with_409_naming_field_and_manager(self):
        self.apply(CM + "/c", cm(data={"a": "1"}), "one")
        e = self.err(409, "PATCH", CM + "/c", cm(data={"a": "2"}), "application/apply-patch+yaml", fieldManager="two")
        self.assertEqual(e.reason, "Conflict")
        self.assertEqual(e.message, 'Apply failed with 1 conflict: conflict with "one": .data.a')
        self.assertEqual(e.details["causes"], [{"reason": "FieldManagerConflict", "message": 'conflict with "one"',
                                                "field": ".data.a"}])

    def test_force_moves_ownership_to_the_applier(self):
        self.apply(CM + "/c", cm(data={"a": "1", "b": "1"}), "one")
        o = self.apply(CM + "/c", cm(data={"a": "2"}), "two", force="true")
        m = self.managers(o)
        self.assertEqual(o["data"], {"a": "2", "b": "1"})
        self.assertEqual(m[("one", "Apply", "")], {(("f", "data"), ("f", "b"))})
        self.assertEqual(m[("two", "Apply", "")], {(("f", "data"), ("f", "a"))})

    def test_same_value_is_shared_ownership_without_conflict(self):
        self.apply(CM + "/c", cm(data={"a": "1"}), "one")
        o = self.apply(CM + "/c", cm(data={"a": "1"}), "two")
        m = self.managers(o)
        self.assertIn((("f", "data"), ("f", "a")), m[("one", "Apply", "")])
        self.assertIn((("f", "data"), ("f", "a")), m[("two", "Apply", "")])

    def test_field_dropped_from_config_is_removed_unless_another_manager_owns_it(self):
        self.apply(CM + "/c", cm(data={"a": "1", "b": "1"}), "one")
        self.apply(CM + "/c", cm(data={"b": "1"}), "two")
        o = self.apply(CM + "/c", cm(data={}), "one")
        self.assertEqual(o["data"], {"b": "1"})

    def test_noop_apply_keeps_resource_version_and_times(self):
        a = self.apply(CM + "/c", cm(data={"a": "1"}), "one")
        b = self.apply(CM + "/c", cm(data={"a": "1"}), "one")
        self.assertEqual(a["metadata"]["resourceVersion"], b["metadata"]["resourceVersion"])
        self.assertEqual(a["metadata"]["managedFields"], b["metadata"]["managedFields"])

    def test_containers_merge_by_name_and_ports_by_port_and_defaulted_protocol(self):
        self.apply(DEP + "/web", deploy(ports=[{"containerPort": 80}]), "one")
        side = deploy()
        side["spec"]["template"]["spec"]["containers"] = [{"name": "side", "image": "busybox"}]
        del side["spec"]["selector"]
        o = self.apply(DEP + "/web", side, "two")
        names = [c["name"] for c in o["spec"]["template"]["spec"]["containers"]]
        self.assertEqual(names, ["app", "side"])
        ports = o["spec"]["template"]["spec"]["containers"][0]["ports"]
        self.assertEqual(ports, [{"containerPort": 80, "protocol": "TCP"}])
        key = 'k:{"containerPort":80,"protocol":"TCP"}'
        fv = [e for e in o["metadata"]["managedFields"] if e["manager"] == "one"][0]["fieldsV1"]
        self.assertIn(key, fv["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"app"}']["f:ports"])

    def test_container_dropped_from_config_is_removed_whole(self):
        two = deploy()
        two["spec"]["template"]["spec"]["containers"].append({"name": "side", "image": "busybox"})
        self.apply(DEP + "/web", two, "one")
        o = self.apply(DEP + "/web", deploy(), "one")
        self.assertEqual([c["name"] for c in o["spec"]["template"]["spec"]["containers"]], ["app"])

    def test_update_manager_is_named_with_api_version_and_time_in_conflicts(self):
        self.ok("POST", CM, cm(data={"a": "1"}), fieldManager="editor")
        e = self.err(409, "PATCH", CM + "/c", cm(data={"a": "2"}), "application/apply-patch+yaml", fieldManager="m")
        self.assertRegex(e.message, r'conflict with "editor" using v1 at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ: \.data\.a$')

    def test_apply_dry_run_create_has_empty_resource_version_and_stores_nothing(self):
        o = self.apply(CM + "/c", cm(data={"a": "1"}), "m", dryRun="All")
        self.assertEqual(o["metadata"]["resourceVersion"], "")
        self.err(404, "GET", CM + "/c")


class Updates(Base):
    def test_update_takes_changed_fields_from_other_managers(self):
        self.apply(CM + "/c", cm(data={"a": "1", "b": "1"}), "one")
        o = self.ok("PATCH", CM + "/c", {"data": {"a": "2"}}, "application/merge-patch+json", fieldManager="ed")
        m = self.managers(o)
        self.assertEqual(m[("one", "Apply", "")], {(("f", "data"), ("f", "b"))})
        self.assertEqual(m[("ed", "Update", "")], {(("f", "data"), ("f", "a"))})

    def test_json_patch_replacing_managed_fields_is_stored_as_written(self):
        o = self.ok("POST", CM, cm(data={"a": "1"}), fieldManager="kubectl-edit")
        mf = copy.deepcopy(o["metadata"]["managedFields"])
        mf[0]["manager"], mf[0]["operation"] = "berth", "Apply"
        o2 = self.ok("PATCH", CM + "/c", [{"op": "replace", "path": "/metadata/managedFields", "value": mf}],
                     "application/json-patch+json", fieldManager="berth")
        self.assertEqual([(e["manager"], e["operation"]) for e in o2["metadata"]["managedFields"]],
                         [("berth", "Apply")])

    def test_put_with_stale_resource_version_is_409_conflict(self):
        o = self.ok("POST", CM, cm(data={"a": "1"}))
        self.ok("PUT", CM + "/c", dict(o, data={"a": "2"}))
        e = self.err(409, "PUT", CM + "/c", dict(o, data={"a": "3"}))
        self.assertIn("the object has been modified", e.message)

    def test_noop_update_does_not_bump_resource_version(self):
        o = self.ok("POST", CM, cm(data={"a": "1"}))
        o2 = self.ok("PUT", CM + "/c", o)
        self.assertEqual(o["metadata"]["resourceVersion"], o2["metadata"]["resourceVersion"])

    def test_strategic_merge_patch_merges_containers_by_name(self):
        self.ok("POST", DEP, deploy())
        p = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "nginx:2"}]}}}}
        o = self.ok("PATCH", DEP + "/web", p, "application/strategic-merge-patch+json")
        c = o["spec"]["template"]["spec"]["containers"]
        self.assertEqual((len(c), c[0]["image"], c[0]["terminationMessagePolicy"]), (1, "nginx:2", "File"))

    def test_unknown_patch_type_is_415(self):
        self.ok("POST", CM, cm())
        self.err(415, "PATCH", CM + "/c", {}, "application/x-yaml")


class Versioning(Base):
    def test_generation_moves_on_spec_not_metadata_or_status(self):
        self.ok("POST", DEP, deploy())
        o = self.ok("PATCH", DEP + "/web", {"metadata": {"labels": {"x": "y"}}}, "application/merge-patch+json")
        self.assertEqual(o["metadata"]["generation"], 1)
        o = self.ok("PATCH", DEP + "/web/status", {"status": {"replicas": 3}}, "application/merge-patch+json")
        self.assertEqual((o["metadata"]["generation"], o["status"]["replicas"]), (1, 3))
        o = self.ok("PATCH", DEP + "/web", {"spec": {"replicas": 4}}, "application/merge-patch+json")
        self.assertEqual(o["metadata"]["generation"], 2)

    def test_status_in_a_main_resource_write_is_ignored(self):
        self.ok("POST", DEP, deploy())
        o = self.ok("PATCH", DEP + "/web", {"status": {"replicas": 3}}, "application/merge-patch+json")
        self.assertNotIn("replicas", o.get("status") or {})

    def test_resource_version_is_a_global_counter_string(self):
        a = self.ok("POST", CM, cm("a"))
        b = self.ok("POST", CM, cm("b"))
        self.assertEqual(int(b["metadata"]["resourceVersion"]), int(a["metadata"]["resourceVersion"]) + 1)

    def test_recreate_gets_a_new_uid(self):
        a = self.ok("POST", CM, cm())
        self.ok("DELETE", CM + "/c")
        b = self.ok("POST", CM, cm())
        self.assertNotEqual(a["metadata"]["uid"], b["metadata"]["uid"])


class Validation(Base):
    def test_changed_deployment_selector_is_422_field_is_immutable(self):
        self.ok("POST", DEP, deploy())
        e = self.err(422, "PUT", DEP + "/web", deploy(app="other"))
        self.assertEqual(e.details["causes"][0]["field"], "spec.selector")
        self.assertIn("field is immutable", e.message)

    def test_service_cluster_ip_is_allocated_and_immutable(self):
        svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}}
        o = self.ok("POST", "/api/v1/namespaces/default/services", svc)
        self.assertRegex(o["spec"]["clusterIP"], r"^10\.96\.")
        o["spec"]["clusterIP"] = "10.96.99.99"
        self.err(422, "PUT", "/api/v1/namespaces/default/services/s", o)

    def test_selector_not_matching_template_is_422(self):
        d = deploy()
        d["spec"]["template"]["metadata"]["labels"] = {"app": "x"}
        e = self.err(422, "POST", DEP, d)
        self.assertIn("`selector` does not match template `labels`", e.message)

    def test_create_in_missing_namespace_is_404_namespaces_not_found(self):
        e = self.err(404, "POST", "/api/v1/namespaces/nope/configmaps", cm())
        self.assertEqual(e.message, 'namespaces "nope" not found')

    def test_secret_string_data_is_folded_into_data(self):
        s = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"k": "v"}}
        o = self.ok("POST", "/api/v1/namespaces/default/secrets", s)
        self.assertEqual((o["data"], "stringData" in o, o["type"]), ({"k": "dg=="}, False, "Opaque"))


class Deletion(Base):
    def test_finalizer_keeps_object_until_removed(self):
        self.ok("POST", CM, cm(finalizers=["x/y"]))
        o = self.ok("DELETE", CM + "/c")
        self.assertIn("deletionTimestamp", o["metadata"])
        self.ok("GET", CM + "/c")
        e = self.err(422, "PATCH", CM + "/c", {"metadata": {"finalizers": ["x/y", "new/one"]}},
                     "application/merge-patch+json")
        self.assertIn("no new finalizers", e.message)
        self.ok("PATCH", CM + "/c", {"metadata": {"finalizers": None}}, "application/merge-patch+json")
        self.err(404, "GET", CM + "/c")

    def test_foreground_adds_foreground_deletion_finalizer(self):
        self.ok("POST", CM, cm())
        o = self.ok("DELETE", CM + "/c", {"propagationPolicy": "Foreground"})
        self.assertEqual(o["metadata"]["finalizers"], ["foregroundDeletion"])

    def test_uid_precondition_mismatch_is_409(self):
        self.ok("POST", CM, cm())
        self.err(409, "DELETE", CM + "/c", {"preconditions": {"uid": "other"}})

    def test_dry_run_delete_keeps_the_object(self):
        self.ok("POST", CM, cm())
        self.ok("DELETE", CM + "/c", dryRun="All")
        self.ok("GET", CM + "/c")


class CustomResources(Base):
    CRD = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "widgets.example.com"},
           "spec": {"group": "example.com", "scope": "Namespaced",
                    "names": {"plural": "widgets", "kind": "Widget"},
                    "versions": [{"name": "v1", "served": True, "storage": True,
                                  "subresources": {"status": {}},
                                  "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                                      "spec": {"type": "object", "properties": {
                                          "size": {"type": "integer"}, "color": {"type": "string", "default": "blue"},
                                          "items": {"type": "array", "x-kubernetes-list-type": "map",
                                                    "x-kubernetes-list-map-keys": ["id"],
                                                    "items": {"type": "object", "properties": {
                                                        "id": {"type": "string"}, "v": {"type": "string"}}}}}},
                                      "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}}}]}}

    def establish(self):
        self.ok("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", self.CRD)
        key = ("apiextensions.k8s.io", "customresourcedefinitions", "", "widgets.example.com")
        api.controller_write(self.state, key, lambda o: o["status"].__setitem__(
            "conditions", [{"type": "Established", "status": "True"}]))

    def test_cr_is_not_served_before_the_crd_is_established(self):
        self.ok("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", self.CRD)
        self.err(404, "GET", "/apis/example.com/v1/namespaces/default/widgets")

    def test_cr_is_pruned_defaulted_and_list_map_merged(self):
        self.establish()
        p = "/apis/example.com/v1/namespaces/default/widgets/w"
        body = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
                "spec": {"size": 1, "junk": True, "items": [{"id": "a", "v": "1"}]}}
        o = self.apply(p, body, "one")
        self.assertEqual(o["spec"], {"size": 1, "color": "blue", "items": [{"id": "a", "v": "1"}]})
        o = self.apply(p, dict(body, spec={"items": [{"id": "b", "v": "2"}]}), "two")
        self.assertEqual([i["id"] for i in o["spec"]["items"]], ["a", "b"])

    def test_cr_schema_type_error_is_422(self):
        self.establish()
        body = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": "x"}}
        e = self.err(422, "POST", "/apis/example.com/v1/namespaces/default/widgets", body)
        self.assertIn("spec.size in body must be of type integer", e.message)

    def test_strategic_merge_patch_on_a_cr_is_415(self):
        self.establish()
        self.ok("POST", "/apis/example.com/v1/namespaces/default/widgets",
                {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 1}})
        self.err(415, "PATCH", "/apis/example.com/v1/namespaces/default/widgets/w", {},
                 "application/strategic-merge-patch+json")


class Selectors(unittest.TestCase):
    def test_set_based_and_equality_requirements(self):
        r = parse_label_selector("app in (a, b),tier!=db,!legacy,env")
        self.assertTrue(match_labels(r, {"app": "a", "tier": "web", "env": "x"}))
        self.assertFalse(match_labels(r, {"app": "a", "tier": "web", "env": "x", "legacy": "1"}))
        self.assertFalse(match_labels(r, {"app": "c", "env": "x"}))

    def test_bad_selector_is_400(self):
        with self.assertRaises(E.StatusError) as c:
            parse_label_selector("app in a")
        self.assertEqual(c.exception.code, 400)


class WatchHistory(Base):
    def test_events_older_than_the_window_are_expired(self):
        self.state.store.set_window(2)
        rv = self.state.store.rv
        for n in "abc":
            self.ok("POST", CM, cm(n))
        self.assertIsNone(self.state.store.events_after(rv))
        self.assertEqual(len(self.state.store.events_after(self.state.store.rv - 2)), 2)


class FieldsV1(unittest.TestCase):
    def test_encode_decode_round_trip(self):
        s = {(("f", "data"), ("f", "a")), (("f", "spec"), ("f", "c"), ("k", '{"name":"x"}')),
             (("f", "spec"), ("f", "c"), ("k", '{"name":"x"}'), ("f", "image"))}
        enc = A.encode_fields(s)
        self.assertEqual(enc["f:spec"]["f:c"]['k:{"name":"x"}'], {".": {}, "f:image": {}})
        self.assertEqual(A.decode_fields(enc), s)


if __name__ == "__main__":
    unittest.main(verbosity=1)
