# The analysis phase, run inside Starlark: rule implementations, providers and depsets never leave it.
# Python hands over targets in dependency order as plain data and receives, per target, the files
# it provides; actions reach Python through host_register_action as they are created.

load(":bzl_prelude.bzl", "DefaultInfo", "ToolchainInfo", "depset", "pybuild_depset_of_node")

def _split(path):
    if "/" in path:
        dirname, basename = path.rsplit("/", 1)
        return dirname, basename
    return "", path

def make_file(path, short_path, owner, is_source, root = "", is_directory = False):
    dirname, basename = _split(path)
    extension = basename.rsplit(".", 1)[-1] if "." in basename else ""
    return struct(
        path = path,
        short_path = short_path,
        basename = basename,
        dirname = dirname,
        extension = extension,
        is_source = is_source,
        is_directory = is_directory,
        owner = owner,
        root = struct(path = root),
    )

def _files_of(value):
    """Files from a File, a list of Files or a depset of Files."""
    if value == None:
        return []
    if type(value) == "struct" and hasattr(value, "pybuild_depset"):
        return value.to_list()
    if type(value) == "list":
        out = []
        for item in value:
            out.extend(_files_of(item))
        return out
    return [value]

def _input_refs(value):
    """Action inputs for the host: a depset as its node id (flattened there), a File as its path."""
    if value == None:
        return []
    if type(value) == "struct" and hasattr(value, "pybuild_depset"):
        return [] if value.empty else [value.node.id]
    if type(value) == "list":
        out = []
        for item in value:
            out.extend(_input_refs(item))
        return out
    return [value.path]

def _expand_args(arguments):
    out = []
    for argument in arguments:
        kind = type(argument)
        if kind == "string":  # first: nearly every argument is one
            out.append(argument)
        elif kind == "struct" and hasattr(argument, "pybuild_args"):
            out.extend(argument.expand())
        elif kind == "struct" and hasattr(argument, "path"):
            out.append(argument.path)
        else:
            fail("ctx.actions.run: arguments must be strings, Files or Args, got %s" % type(argument))
    return out

def _map_value(value, map_each):
    mapped = map_each(value) if map_each != None else value
    if mapped == None:
        return []
    values = mapped if type(mapped) == "list" else [mapped]
    return [v.path if type(v) == "struct" and hasattr(v, "path") else v for v in values]

def _format(value, fmt):
    return fmt % value if fmt != None else value

def _args():
    items = []

    def add(arg_name_or_value, value = None, format = None):
        if value == None:
            items.extend([_format(v, format) for v in _map_value(arg_name_or_value, None)])
        else:
            items.append(arg_name_or_value)
            items.extend([_format(v, format) for v in _map_value(value, None)])
        return args

    def _values(values, map_each, uniquify):
        flat = []
        for v in _files_of(values) if type(values) != "list" else values:
            flat.extend(_map_value(v, map_each))
        if uniquify:
            flat = {v: None for v in flat}.keys()
        return list(flat)

    def _begin(arg_name_or_values, values, map_each, uniquify, omit_if_empty):
        """The values to add (None: add nothing); the argument name goes in first when one was given."""
        flat = _values(values if values != None else arg_name_or_values, map_each, uniquify)
        if not flat and omit_if_empty:
            return None
        if values != None:
            items.append(arg_name_or_values)
        return flat

    def add_all(arg_name_or_values, values = None, map_each = None, format_each = None, before_each = None,
                omit_if_empty = True, uniquify = False, terminate_with = None):
        flat = _begin(arg_name_or_values, values, map_each, uniquify, omit_if_empty)
        if flat == None:
            return args
        for v in flat:
            if before_each != None:
                items.append(before_each)
            items.append(_format(v, format_each))
        if terminate_with != None:
            items.append(terminate_with)
        return args

    def add_joined(arg_name_or_values, values = None, join_with = "", map_each = None, format_each = None,
                   format_joined = None, omit_if_empty = True, uniquify = False):
        flat = _begin(arg_name_or_values, values, map_each, uniquify, omit_if_empty)
        if flat == None:
            return args
        items.append(_format(join_with.join([_format(v, format_each) for v in flat]), format_joined))
        return args

    args = struct(pybuild_args = True, add = add, add_all = add_all, add_joined = add_joined,
                  expand = lambda: list(items))
    return args

def _encoded(spec):
    """The action as one JSON text: the host decodes one string instead of one value per list item.
    JSON turns non-string dict keys into strings, so such an action goes over as it is."""
    for key in ("env", "execution_requirements"):
        value = spec.get(key)
        if type(value) == "dict":
            for name in value:
                if type(name) != "string":
                    return spec
    return json.encode(spec)

def _actions(target, bin_dir):
    package_dir = bin_dir + "/" + target["package_path"] if target["package_path"] else bin_dir

    def _declare(filename, sibling, is_directory):
        directory = sibling.dirname if sibling != None else package_dir
        path = directory + "/" + filename
        short_path = path[len(bin_dir) + 1:]
        if not path.startswith(bin_dir + "/"):
            fail("declared output '%s' is outside the output directory" % path)
        return make_file(path, short_path, target["label"], False, bin_dir, is_directory)

    def declare_file(filename, sibling = None):
        return _declare(filename, sibling, False)

    def declare_directory(filename, sibling = None):
        return _declare(filename, sibling, True)

    def run(outputs, executable, arguments = [], inputs = [], tools = [], env = {}, mnemonic = "Action",
            progress_message = "", execution_requirements = {}, use_default_shell_env = False, **kwargs):
        program = executable.path if type(executable) == "struct" else executable
        tool_files = [executable] if type(executable) == "struct" else []
        host_register_action(_encoded({
            "mnemonic": mnemonic,
            "argv": [program] + _expand_args(arguments),
            "inputs": _input_refs(inputs) + _input_refs(tools) + [f.path for f in tool_files],
            "outputs": [f.path for f in _files_of(outputs)],
            "output_directories": [f.path for f in _files_of(outputs) if f.is_directory],
            "env": env,
            "progress_message": progress_message,
            "execution_requirements": execution_requirements,
        }))

    def write(output, content, is_executable = False):
        if type(content) == "struct" and hasattr(content, "pybuild_args"):
            content = "\n".join(content.expand()) + "\n"
        host_register_action(_encoded({
            "mnemonic": "FileWrite",
            "argv": [],
            "inputs": [],
            "outputs": [output.path],
            "content": content,
            "is_executable": is_executable,
            "progress_message": "Writing file %{output}",
        }))

    return struct(declare_file = declare_file, declare_directory = declare_directory, run = run, write = write,
                  args = _args)

def _runfiles(files = [], transitive_files = None, **kwargs):
    collected = depset(files, transitive = [transitive_files] if transitive_files != None else [])
    return _wrap_runfiles(collected)

def _wrap_runfiles(files):
    return struct(
        pybuild_runfiles = True,
        files = files,
        merge = lambda other: _wrap_runfiles(depset(transitive = [files, other.files])),
        merge_all = lambda others: _wrap_runfiles(depset(transitive = [files] + [o.files for o in others])),
    )

def _attr_value(kind, value, analyzed):
    if kind == "label":
        return analyzed[value] if value != None else None
    if kind == "label_list":
        return [analyzed[v] for v in value]
    if kind == "label_keyed_string_dict":
        # Keys stay label strings: Target values are dicts, which cannot be dict keys.
        return value
    return value

def _default_files(target):
    return target[DefaultInfo].files.to_list() if DefaultInfo in target else []

def _make_ctx(target, rule, analyzed, config, toolchains):
    attrs = {"name": target["label_parts"]["name"]}
    attrs.update(rule["defaults"])
    attrs.update(target["attrs"])
    files, file, executable = {}, {}, {}
    for name, kind in rule["dep_attrs"].items():
        value = attrs[name]
        attrs[name] = _attr_value(kind, value, analyzed)
        if kind == "label":
            dep_files = _default_files(attrs[name]) if value != None else []
            files[name] = dep_files
            file[name] = dep_files[0] if len(dep_files) == 1 else None
            info = attrs[name][DefaultInfo] if value != None else None
            executable[name] = info.executable if info != None and info.executable != None else file[name]
        elif kind == "label_list":
            files[name] = [f for dep in attrs[name] for f in _default_files(dep)]
    label = target["label_parts"]
    return struct(
        # workspace_root: where the repository's files are in the execution root ("" for the main one).
        label = struct(name = label["name"], package = label["package"], workspace_name = label["repo"],
                       repo_name = label["repo"], workspace_root = target["workspace_root"]),
        attr = struct(**attrs),
        files = struct(**files),
        file = struct(**file),
        executable = struct(**executable),
        actions = _actions(target, config["bin_dir"]),
        toolchains = toolchains,
        bin_dir = struct(path = config["bin_dir"]),
        var = config["var"],
        workspace_name = config["workspace_name"],
        build_setting_value = target.get("build_setting_value"),
        runfiles = _runfiles,
    )

def _source_target(target):
    f = make_file(target["path"], target["short_path"], target["label"], True)
    files = pybuild_depset_of_node(target["node"], [f])  # the host made the node (see Analysis._target_data)
    return {DefaultInfo: DefaultInfo(files = files, runfiles = _wrap_runfiles(files))}

def _collect(providers, target):
    if type(providers) == "struct":
        providers = [providers]
    if type(providers) != "list":
        fail("rule implementation of %s must return a list of providers, got %s" % (target["label"], type(providers)))
    result = {}
    for provider in providers:
        if type(provider) != "struct" or not hasattr(provider, "pybuild_provider"):
            fail("rule implementation of %s returned %s, which is not a provider" % (target["label"], type(provider)))
        result[provider.pybuild_provider] = provider
    # pybuild's spelling of Bazel's `target.label`: a Target is a dict of providers, so it is a key.
    result["label"] = target["label"]
    if DefaultInfo not in result:
        result[DefaultInfo] = DefaultInfo(files = depset(), runfiles = _runfiles())
    return result

def _summary(target):
    info = target[DefaultInfo]
    runfiles = info.runfiles if info.runfiles != None else info.default_runfiles
    return {
        "files": [f.path for f in info.files.to_list()] if info.files != None else [],
        "executable": info.executable.path if info.executable != None else None,
        "runfiles": [f.path for f in runfiles.files.to_list()] if runfiles != None else [],
    }

def analysis_state(rules, rule_data, config):
    """What analyze() keeps between its calls: the rules by the host's ids, what their targets share (JSON:
    [[rule id, {dep_attrs, defaults}], ...]), and every analyzed target.

    The host's id of each rule class (a target's "rule_id") need not be the one rule() was given in this
    process (rule classes may come from the load cache).
    """
    infos = {rule_id: rule_function(_pybuild_rule_info = True) for rule_id, rule_function in rules.items()}
    shared = {rule_id: data for rule_id, data in json.decode(rule_data)}
    return struct(infos = infos, rules = shared, config = config, analyzed = {})

def analyze(state, chunk_json):
    """Analyze the chunk's targets (dependencies first, after those of earlier calls); return
    {label: summary} for the rule targets. Then forget the targets the chunk names as released: no
    later chunk reads them."""
    chunk = json.decode(chunk_json)
    analyzed = state.analyzed
    summaries = {}
    for target in chunk["targets"]:
        if target["rule_id"] == None:
            analyzed[target["label"]] = _source_target(target)
            continue
        host_begin_target(target["label"])
        toolchains = {}
        for type_name, toolchain_label in target["toolchains"].items():
            toolchains[type_name] = analyzed[toolchain_label][ToolchainInfo]
        ctx = _make_ctx(target, state.rules[target["rule_id"]], analyzed, state.config, toolchains)
        result = _collect(state.infos[target["rule_id"]].implementation(ctx), target)
        analyzed[target["label"]] = result
        summaries[target["label"]] = _summary(result)
    for label in chunk["released"]:
        analyzed.pop(label)
    return summaries
