# bash completion for livepatch(8).
# Install as /usr/share/bash-completion/completions/livepatch, or source it.
# Works without the bash-completion package. The option lists must match
# long_opts in cmd/livepatch.c (test/integration/cli.bats checks it).

_livepatch_long_opts='--pid --func --target --revert --revert-all --plan --load --unload --callsites --in
	--list --symbols --where --dry-run --timeout --safe --verify --verify-min-calls --json --quiet --verbose
	--help --version --all --all-build-id --exe --exclude --jobs --atomic --canary'
_livepatch_short_opts='-p -f -t -r -l -n -j -q -v -h -V'

# Set _livepatch_pid to the pid given by -p/--pid among the arguments (the
# words before the current one); the last one wins, as with getopt.
_livepatch_pid_of()
{
	local i w
	_livepatch_pid=
	for ((i = 1; i <= $#; i++)); do
		w=${!i}
		case $w in
		--pid=*) w=${w#--pid=} ;;
		--pid | -p) ((i < $#)) || return 0; i=$((i + 1)); w=${!i} ;;
		-p?*) w=${w#-p} ;;
		*) continue ;;
		esac
		[[ $w =~ ^[0-9]+$ ]] && _livepatch_pid=$w
	done
}

# Add to COMPREPLY the OBJECT:SYMBOL names that start with $cur, from --symbols of the
# process given by --pid among ${words[@]:0:cword} (variables of _livepatch).
_livepatch_functions()
{
	local lp pid s
	local -a syms
	_livepatch_pid_of "${words[@]:0:cword}"
	pid=$_livepatch_pid
	[[ -n $pid ]] || return 0
	lp=${words[0]}
	[[ $lp == */* && -x $lp ]] || lp=livepatch
	# --symbols may not exist in this livepatch: then offer nothing, quietly.
	mapfile -t syms < <(if command -v timeout >/dev/null; then
		timeout 5 "$lp" --pid "$pid" --symbols "$cur"
	else
		"$lp" --pid "$pid" --symbols "$cur"
	fi 2>/dev/null </dev/null)
	for s in "${syms[@]}"; do
		[[ -n $s && $s != *[[:space:]]* && $s == "$cur"* ]] && COMPREPLY+=("$s")
	done
}

_livepatch()
{
	local -a words syms
	local cword cur opt lp pid line i s
	COMPREPLY=()

	# Words split on whitespace only, so that "libc.so.6:memcpy" and "--pid=42"
	# stay one word: bash's COMP_WORDS breaks them at ':' and '='.
	if [[ -n ${COMP_LINE-} && -n ${COMP_POINT-} ]]; then
		line=${COMP_LINE:0:COMP_POINT}
		read -ra words <<<"$line"
		[[ -z $line || $line == *[[:space:]] ]] && words+=("")
		cword=$((${#words[@]} - 1))
	else	# no line (called by hand): glue COMP_WORDS back at ':' and '='
		cword=-1
		for ((i = 0; i <= COMP_CWORD && i < ${#COMP_WORDS[@]}; i++)); do
			s=${COMP_WORDS[i]}
			if ((cword >= 0)) && [[ $s == [:=] || ${words[cword]} == *[:=] ]]; then
				words[cword]+=$s
			else
				words[++cword]=$s
			fi
		done
		((COMP_CWORD >= ${#COMP_WORDS[@]})) && words[++cword]=
	fi
	cur=${words[cword]-}
	opt=
	((cword > 0)) && opt=${words[cword - 1]}
	if [[ $cur == --*=* ]]; then
		opt=${cur%%=*}
		cur=${cur#*=}
	fi

	case $opt in
	--pid | -p | --exclude)	# live processes, from /proc (no external command)
		for s in /proc/[0-9]*; do
			s=${s#/proc/}
			[[ $s == "$cur"* ]] && COMPREPLY+=("$s")
		done
		;;
	--func | -f | --target | -t | --revert | -r | --where)
		_livepatch_functions
		;;
	--timeout | --verify-min-calls | --jobs | --canary | --all-build-id)
		;;	# a number: nothing to offer
	--all | --exe)	# a file on this host
		compopt -o filenames 2>/dev/null
		mapfile -t COMPREPLY < <(compgen -f -- "$cur")
		;;
	--unload)	# the names of the patches loaded in the process of --pid, from --list
		_livepatch_pid_of "${words[@]:0:cword}"
		pid=$_livepatch_pid
		[[ -n $pid ]] || return 0
		lp=${words[0]}
		[[ $lp == */* && -x $lp ]] || lp=livepatch
		# "patch     fix.o: sha256 ...": one line per loaded patch.
		mapfile -t syms < <(if command -v timeout >/dev/null; then
			timeout 5 "$lp" --pid "$pid" --list
		else
			"$lp" --pid "$pid" --list
		fi 2>/dev/null </dev/null | sed -n 's/^patch  *\([^ :][^ ]*\): .*/\1/p')
		for s in "${syms[@]}"; do
			[[ $s == "$cur"* ]] && COMPREPLY+=("$s")
		done
		;;
	--plan)
		mapfile -t COMPREPLY < <(compgen -f -- "$cur")
		;;
	--load)	# relocatable objects (*.o), and directories to look into
		compopt -o filenames 2>/dev/null	# a '/' after a directory, no space
		mapfile -t COMPREPLY < <({ compgen -f -X '!*.o' -- "$cur"; compgen -d -- "$cur"; } | sort -u)
		;;
	--in)	# the objects mapped by the process of --pid: the OBJECT part of its symbols
		_livepatch_pid_of "${COMP_WORDS[@]:0:COMP_CWORD}"
		[[ -n $_livepatch_pid ]] && mapfile -t COMPREPLY < <(
			"${COMP_WORDS[0]}" --pid "$_livepatch_pid" --symbols 2>/dev/null |
				cut -d: -f1 | sort -u | grep -F -- "$cur")
		;;
	*)
		if [[ -z $cur || $cur == -* ]]; then
			mapfile -t COMPREPLY < <(compgen -W "$_livepatch_short_opts $_livepatch_long_opts" -- "$cur")
		else	# the names after --where F are more functions
			for s in "${words[@]:1:cword-1}"; do
				[[ $s == --where || $s == --where=* ]] && { _livepatch_functions; break; }
			done
		fi
		;;
	esac

	# Readline replaces only the text after the last word break (':' and '='
	# are in COMP_WORDBREAKS by default): drop what comes before from each
	# candidate, as "libc.so.6:" in "libc.so.6:memcpy".
	local brk=${COMP_WORDBREAKS-}
	brk=${brk//[^:=]/}
	if [[ -n $brk && $cur == *["$brk"]* ]]; then
		local pre=${cur%"${cur##*["$brk"]}"}
		for i in "${!COMPREPLY[@]}"; do
			COMPREPLY[i]=${COMPREPLY[i]#"$pre"}
		done
	fi
	return 0
}

complete -F _livepatch livepatch
