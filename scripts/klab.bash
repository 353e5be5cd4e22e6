# bash completion for klab. The candidates come from klab itself (`klab __complete`), from the same tables
# that drive its option parser and --help, and from the user's run state (VM names) and cache (kernels).
_klab() {
  local cur=${COMP_WORDS[COMP_CWORD]} out files=
  out=$(command klab __complete "$COMP_CWORD" "${COMP_WORDS[@]}" 2>/dev/null) || return 0
  if [[ $out == *__files__* ]]; then
    files=1
    out=${out//__files__/}
  fi
  local IFS=$'\n'
  # shellcheck disable=SC2207
  COMPREPLY=($(compgen -W "$out" -- "$cur"))
  if [[ -n $files ]]; then
    # shellcheck disable=SC2207
    COMPREPLY+=($(compgen -f -- "$cur"))
    compopt -o filenames 2>/dev/null
  fi
}
complete -F _klab klab
