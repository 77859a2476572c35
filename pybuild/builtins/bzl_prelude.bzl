# The Bazel API that .bzl files see: rule(), attr, provider().
# Host functions (host_*) are Python callables pybuild adds to this module before evaluating it.
# Only JSON-like data crosses to Python, so function values (implementations, providers) stay here
# and are reached again through the rule and provider closures below.

def _attr(kind, mandatory, default, doc, **schema):
    host = {"type": kind, "mandatory": mandatory, "default": default}
    host.update(schema)
    return struct(pybuild_attr = kind, host = host, doc = doc)

def _label(default = None, doc = "", mandatory = False, executable = False, allow_files = None,
           allow_single_file = None, providers = [], cfg = None, **kwargs):
    return _attr("label", mandatory, default, doc, executable = executable,
                 allow_files = allow_files != None and allow_files != False,
                 allow_single_file = allow_single_file != None and allow_single_file != False)

def _label_list(default = [], doc = "", mandatory = False, allow_empty = True, allow_files = None,
                providers = [], cfg = None, **kwargs):
    return _attr("label_list", mandatory, default, doc, allow_empty = allow_empty,
                 allow_files = allow_files != None and allow_files != False)

def _label_keyed_string_dict(default = {}, doc = "", mandatory = False, allow_empty = True,
                             allow_files = None, providers = [], cfg = None, **kwargs):
    return _attr("label_keyed_string_dict", mandatory, default, doc, allow_empty = allow_empty)

def _string(default = "", doc = "", mandatory = False, values = [], **kwargs):
    return _attr("string", mandatory, default, doc, values = values)

def _string_list(default = [], doc = "", mandatory = False, allow_empty = True, **kwargs):
    return _attr("string_list", mandatory, default, doc, allow_empty = allow_empty)

def _string_dict(default = {}, doc = "", mandatory = False, allow_empty = True, **kwargs):
    return _attr("string_dict", mandatory, default, doc, allow_empty = allow_empty)

def _string_list_dict(default = {}, doc = "", mandatory = False, allow_empty = True, **kwargs):
    return _attr("string_list_dict", mandatory, default, doc, allow_empty = allow_empty)

def _bool(default = False, doc = "", mandatory = False, **kwargs):
    return _attr("bool", mandatory, default, doc)

def _int(default = 0, doc = "", mandatory = False, values = [], **kwargs):
    return _attr("int", mandatory, default, doc, values = values)

def _output(doc = "", mandatory = False, **kwargs):
    return _attr("output", mandatory, None, doc)

def _output_list(doc = "", mandatory = False, allow_empty = True, **kwargs):
    return _attr("output_list", mandatory, [], doc, allow_empty = allow_empty)

attr = struct(
    label = _label,
    label_list = _label_list,
    label_keyed_string_dict = _label_keyed_string_dict,
    string = _string,
    string_list = _string_list,
    string_dict = _string_dict,
    string_list_dict = _string_list_dict,
    bool = _bool,
    int = _int,
    output = _output,
    output_list = _output_list,
)

def rule(implementation, attrs = {}, executable = False, test = False, toolchains = [], provides = [],
         doc = "", fragments = [], outputs = None, cfg = None, exec_groups = {}, build_setting = None,
         **kwargs):
    for name, value in attrs.items():
        if type(value) != "struct" or not hasattr(value, "pybuild_attr"):
            fail("rule(): attribute '%s' must be declared with attr.<type>(...), got %s" % (name, type(value)))
    rule_id = host_register_rule(
        str(implementation),
        {name: value.host for name, value in attrs.items()},
        executable,
        test,
        [str(t) for t in toolchains],
        build_setting.kind if build_setting != None else None,
    )
    info = struct(rule_id = rule_id, implementation = implementation, attrs = attrs, toolchains = toolchains)

    # The name is fixed: pybuild recognises rules by it when it looks for exported names.
    # Keyword-only, as in Bazel: rule("x") must not silently become name = "x".
    def pybuild_rule_instantiate(*, name = None, _pybuild_rule_info = False, **kwargs):
        if _pybuild_rule_info:
            return info
        host_instantiate(rule_id, name, _encode_attrs(kwargs), call_stack())

    return pybuild_rule_instantiate

def _encode_attrs(kwargs):
    """The attribute values as one JSON string: the host decodes one string instead of one value per
    argument. JSON turns non-string dict keys into strings, so such a value goes over as it is."""
    for value in kwargs.values():
        if type(value) == "dict":
            for key in value:
                if type(key) != "string":
                    return kwargs
    return json.encode(kwargs)

def provider(doc = "", fields = None, init = None):
    field_names = None if fields == None else list(fields)
    key = host_register_provider(doc, field_names)

    def pybuild_provider_ctor(_pybuild_provider_info = False, **kwargs):
        if _pybuild_provider_info:
            return key
        values = {}
        if field_names != None:
            for name in kwargs:
                if name not in field_names:
                    fail("unexpected field '%s' for provider %s (fields: %s)" % (
                        name, host_provider_name(key), ", ".join(field_names)))

            # As in Bazel, a declared field that is not given reads as None.
            values = {name: None for name in field_names}
        values.update(kwargs)
        return struct(pybuild_provider = pybuild_provider_ctor, **values)

    return pybuild_provider_ctor

def pybuild_export(candidates):
    """Called after a .bzl file is evaluated: names the rules and providers it exports."""
    for name, value in candidates.items():
        if type(value) != "function":
            continue
        kind = str(value).rsplit(".", 1)[-1]
        if kind == "pybuild_rule_instantiate":
            host_export_rule(value(_pybuild_rule_info = True).rule_id, name)
        elif kind == "pybuild_provider_ctor":
            host_export_provider(value(_pybuild_provider_info = True), name)

# depset: an immutable, order-preserving set built from direct items and other depsets.
# Each node is also registered with the host (its direct Files' paths and its children's ids), so an
# action's inputs cross to Python as node ids and are flattened there (pybuild/depsets.py).
# Order: a node's children's items in order, then its direct items, each item the first time it comes.
# A node computes its list once, from its children's lists, and keeps it in `memo`: deep chains of crates
# cost no recursion, and a depset shared by many targets is not walked again by each of them.
_MAX_STEPS = 2147483647  # the largest range() starlark-rust accepts (32-bit)

# Every empty depset: the host never needs its id (no action input or other depset refers to an empty one),
# and a fifth of all depsets are empty (a library's runfiles, most link flags), each a host call saved.
_EMPTY_NODE = struct(id = 0, direct = [], transitive = [], memo = {"items": []})

def _merge(node):
    lists = [child.memo["items"] for child in node.transitive]
    if not lists and len(node.direct) < 2:
        return node.direct
    if len(lists) == 1 and not node.direct:
        return lists[0]
    seen = {}
    for items in lists + [node.direct]:
        for item in items:
            seen[item] = None
    return list(seen)

def _items(root):
    """The node's items (not to be mutated: the list may be shared)."""
    if "items" in root.memo:
        return root.memo["items"]  # most calls: a dependency's files, read again by each of its dependents
    stack = [root]
    for _ in range(_MAX_STEPS):
        if not stack:
            break
        node = stack[-1]
        missing = [child for child in node.transitive if "items" not in child.memo]
        if missing:
            stack.extend(missing)
            continue
        stack.pop()
        if "items" not in node.memo:
            node.memo["items"] = _merge(node)
    return root.memo["items"]

def _paths(items):
    """The paths of `items` if all are Files, else None (the host cannot flatten such a depset)."""
    paths = [item.path for item in items if type(item) == "struct" and hasattr(item, "path")]
    return paths if len(paths) == len(items) else None

def depset(direct = None, order = "default", transitive = None, items = None):
    if order not in ("default", "postorder", "preorder", "topological"):
        fail("depset: unknown order '%s'" % order)
    direct = list(direct if direct != None else (items or []))
    nonempty = [t for t in (transitive or []) if not t.empty]
    if not direct and len(nonempty) == 1:
        return nonempty[0]
    if not direct and not nonempty:
        return _wrap(_EMPTY_NODE, order)
    children = [t.node for t in nonempty]
    # One JSON text: a host call converts each argument apart, and two lists cost it more than encoding.
    node_id = host_new_depset(json.encode([_paths(direct), [child.id for child in children]]))
    node = struct(id = node_id, direct = direct, transitive = children, memo = {})
    if node_id < 0:
        _items(node)  # made while a .bzl file loads: frozen with its module before anything could memoize
    return _wrap(node, order)

def pybuild_depset_of_node(node_id, direct):
    """A depset of `direct` alone whose node the host has made already, as `node_id`."""
    return _wrap(struct(id = node_id, direct = direct, transitive = [], memo = {}), "default")

def _wrap(node, order):
    empty = not node.direct and not node.transitive
    return struct(
        pybuild_depset = True,
        node = node,
        order = order,
        empty = empty,
        to_list = lambda: list(_items(node)),
    )

DefaultInfo = provider(
    doc = "Files a target produces by default, its runfiles and its executable.",
    fields = ["files", "runfiles", "data_runfiles", "default_runfiles", "executable"],
)

ToolchainInfo = provider(doc = "What a toolchain() target hands to rules that request its type.")

platform_common = struct(ToolchainInfo = ToolchainInfo)

def _build_setting(kind, flag = False):
    return struct(kind = kind, flag = flag)

config = struct(
    bool = lambda flag = False: _build_setting("bool", flag),
    string = lambda flag = False: _build_setting("string", flag),
    int = lambda flag = False: _build_setting("int", flag),
)
