/**
 * Shell scripts that run inside the build container (busybox sh or any POSIX sh).
 *
 * A docker exec process is a session leader (runc calls setsid), so the command and everything
 * it starts share its session id. The wrapper records its pid in a file; on abort, a second exec
 * signals every process of that session: TERM first, KILL for what is still there.
 * Arguments arrive as positional parameters, never spliced into the script text.
 */

/** $1 = pid file, $2 = the user's command. */
export const EXEC_WRAPPER = [
  'echo $$ 2>/dev/null > "$1" || { echo "conveyor: cannot write $1: the image needs a writable /tmp" >&2; exit 126; }',
  '/bin/sh -c "$2"',
  'code=$?',
  'rm -f "$1"',
  'exit $code',
].join('\n');

/** $1 = pid file, $2 = how many tenths of a second to wait between TERM and KILL. */
export const EXEC_KILLER = [
  // The wrapper may not have written its pid yet when the abort comes right after the start.
  'i=0; while [ ! -s "$1" ] && [ $i -lt 20 ]; do sleep 0.1; i=$((i+1)); done',
  'sid=$(cat "$1" 2>/dev/null); case "$sid" in ""|*[!0-9]*) exit 0;; esac',
  // Members of the session, read from /proc: the fields after the last ")" are state ppid pgrp session;
  // zombies (state Z) are already dead and only wait for their parent to reap them.
  'members() { for f in /proc/[0-9]*/stat; do line=$(cat "$f" 2>/dev/null) || continue; rest=${line##*) }; set -- $rest; [ "$4" = "$sid" ] && [ "$1" != Z ] && echo ${line%% *}; done; }',
  'signal() { for p in $(members); do kill -$1 $p 2>/dev/null; done; }',
  'signal TERM',
  'i=0; while [ -n "$(members)" ] && [ $i -lt "$2" ]; do sleep 0.1; i=$((i+1)); done',
  'signal KILL',
  'rm -f "$1"',
].join('\n');
