"""The HTTP filters this build links: one line per filter.

Each filter is a folder source/extensions/filters/http/<name>/ with two libraries: `:config`
(its config messages, its types' validation, the policy resources it owns; linked by sluice and
sluice-cp) and `:<name>` (the filter itself; linked by sluice). See docs/extending.md.
"""

SLUICE_HTTP_FILTERS = [
    "acl",
    "auth",
    "cache",
    "cors",
    "grpc_stats",
    "grpc_web",
    "http_log",
    "ip_restriction",
    "rate_limit",
    "request_transformer",
    "request_validator",
    "response_transformer",
    "router",
]

def http_filter_configs():
    """The config libraries of every linked filter (sluice-cp, validation)."""
    return ["//source/extensions/filters/http/%s:config" % f for f in SLUICE_HTTP_FILTERS]

def http_filters():
    """Every linked filter, config and runtime (sluice)."""
    return ["//source/extensions/filters/http/%s" % f for f in SLUICE_HTTP_FILTERS] + http_filter_configs()
