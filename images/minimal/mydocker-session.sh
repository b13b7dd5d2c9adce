# mydocker-hub: every new shell (JupyterLab terminal, login shell) says when the class session ends, if
# the hub will stop this environment then (MYDOCKER_SESSION_END, set by the hub at start).
if [ -n "${MYDOCKER_SESSION_END:-}" ] && [ -z "${MYDOCKER_SESSION_SHOWN:-}" ]; then
  export MYDOCKER_SESSION_SHOWN=1
  printf '\n*** Class session ends at %s: this environment will then be stopped (your files are kept).\n\n' \
    "$(date -d "$MYDOCKER_SESSION_END" '+%Y-%m-%d %H:%M %Z' 2>/dev/null || echo "$MYDOCKER_SESSION_END")"
fi
