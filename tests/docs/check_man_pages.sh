#!/usr/bin/env bash
# Fails when the man pages fall behind the program: a key of imgspool.example.toml (commented
# ones of the example profile included) missing from imgspool.toml(5), a section missing from its
# subsections, or a subcommand of `imgspool --help`, an option of a subcommand's --help, or an
# environment variable the config reads (daemon/config_env.cpp, LOG_LEVEL) missing from
# imgspool(1). Prints every omission, not only the first.
#   check_man_pages.sh IMGSPOOL_BINARY EXAMPLE_TOML MAN1 MAN5 CONFIG_ENV_CPP
set -euo pipefail

binary=$1 example=$2 man1=$3 man5=$4 config_env=$5
missing=0

# Succeeds when the mdoc file has a line matching the extended regex.
has_line() { grep -Eq -- "$2" "$1"; }
miss() {
  echo "check_man_pages: $*" >&2
  missing=$((missing + 1))
}
# Regex-quotes a literal string.
quote() { sed 's/[][\.*^$/+?(){}|]/\\&/g' <<<"$1"; }

# Keys: `key = value`, also commented out (`# key = value`, the example profile).
keys=$(sed -nE 's/^(# )?([a-z][a-z0-9_]*) = .*/\2/p' "$example" | sort -u)
[[ -n $keys ]] || miss "no keys found in $example"
for key in $keys; do
  # An item of a tag list: `.It Cm key No = ...`, or a second key on the line (`, Cm key`).
  has_line "$man5" "^\.It (.* )?Cm $key( |$)" || miss "$man5: no entry for key $key"
done

# Sections: [daemon], [[spool]], ... and the example profile's [profiles.NAME] tables.
sections=$(sed -nE 's/^(# )?(\[\[?[a-z][a-z0-9_.]*\]\]?)$/\2/p' "$example" |
  sed -E 's/^(\[\[?profiles\.)[a-z0-9_-]+/\1NAME/' | sort -u)
[[ -n $sections ]] || miss "no sections found in $example"
for section in $sections; do
  has_line "$man5" "^\.Ss $(quote "$section")(\\\\&)?$" || miss "$man5: no subsection $section"
done

# Subcommands: the lines under "Subcommands:" in the top-level help.
help=$("$binary" --help)
subcommands=$(awk '/^Subcommands:/ { on = 1; next } on && /^  [a-z]/ { print $1 }' <<<"$help")
[[ -n $subcommands ]] || miss "no subcommands in the output of $binary --help"
for cmd in $subcommands; do
  has_line "$man1" "^\.It Cm $cmd( |$)" || miss "$man1: no entry for subcommand $cmd"
  has_line "$man1" "^\.Cm $cmd$" || miss "$man1: subcommand $cmd not in the SYNOPSIS"
  # Its options: "-c,--config TEXT:FILE ...", "--spool TEXT", "--json".
  options=$("$binary" "$cmd" --help | sed -nE 's/^  (-[a-z],)?--([a-z][a-z-]*).*/\2/p' |
    grep -vx help || true)
  for opt in $options; do
    has_line "$man1" "Fl \\\\-$opt( |$)" || miss "$man1: no option --$opt (of $cmd)"
  done
done

# Environment variables: every name config_env.cpp looks up, and LOG_LEVEL.
vars=$( (grep -oE '"[A-Z][A-Z0-9_]+"' "$config_env" | tr -d '"'; echo LOG_LEVEL) | sort -u)
for var in $vars; do
  has_line "$man1" "^\.It (.* )?Ev $var( |$)" || miss "$man1: no ENVIRONMENT entry for $var"
done

if ((missing)); then
  echo "check_man_pages: $missing omission(s)" >&2
  exit 1
fi
echo "check_man_pages: $(wc -w <<<"$keys") keys, $(wc -w <<<"$sections") sections," \
  "$(wc -w <<<"$subcommands") subcommands, $(wc -w <<<"$vars") environment variables documented"
