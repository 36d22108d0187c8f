# bash completion for mq-replicate(1).
#
# Completes the options (the same table as cmd/mq-replicate.c),
# directories after -d/--dir, file names after --token-file, the SOURCE
# (a directory, or the start of an ssh:// or http:// address: with
# "ssh://" typed, the host names of ~/.ssh/known_hosts and ~/.ssh/config),
# and topic names for the TOPIC arguments, from `mq-topic -d SOURCE list`
# when SOURCE is a directory (an address is never contacted to complete a
# word: that could mean an ssh login).  Needs nothing from the
# bash-completion package.
#
# bash splits words at '=' and ':', so "--dir=/x" arrives as "--dir" "="
# "/x" and "ssh://h" as "ssh" ":" "//h"; the word being completed is then
# only the part after the separator.

_mq_replicate_opts='-d --dir -f --follow -h --help -q --quiet -V --version
	--fsync --id --reset --token-file --truncate-diverged'

# Options that take a value, as getopt_long sees them.
_mq_replicate_short_args='d'
_mq_replicate_long_args='--dir --id --token-file'

# For a word of short options ("-fq", "-fd", "-dDIR"), sets
# _mq_replicate_next to 1 when its last letter takes the next word as its
# value.
_mq_replicate_cluster()
{
	local w=${1#-} k

	_mq_replicate_next=
	for ((k = 0; k < ${#w}; k++)); do
		if [[ $_mq_replicate_short_args == *"${w:k:1}"* ]]; then
			((k == ${#w} - 1)) && _mq_replicate_next=1
			return
		fi
	done
}

# Host names for ssh:// from the user's known_hosts (unhashed entries) and
# ssh config (Host lines without patterns).
_mq_replicate_hosts()
{
	local f

	for f in ~/.ssh/known_hosts; do
		[[ -r $f ]] && awk '$1 !~ /^[|#@]/ { n = split($1, h, ","); for (i = 1; i <= n; i++) { x = h[i]; sub(/^\[/, "", x); sub(/\]:.*/, "", x); print x } }' "$f"
	done
	for f in ~/.ssh/config; do
		[[ -r $f ]] && awk 'tolower($1) == "host" { for (i = 2; i <= NF; i++) if ($i !~ /[*?!]/) print $i }' "$f"
	done
}

# The SOURCE, from the word as typed ($1): directories, the schemes, and
# after "ssh://" host names.  bash completes only the part after the last
# ':' of the word (when ':' breaks words, as by default), so that much is
# taken off each candidate.
_mq_replicate_source()
{
	local full=$1 c u pre
	local -a cands=()

	case $full in
	ssh://*/*) ;;
	ssh://*)
		u=${full#ssh://} pre=ssh://
		[[ $u == *@* ]] && pre=ssh://${u%%@*}@ u=${u#*@}
		cands=($(compgen -P "$pre" -W "$(_mq_replicate_hosts | sort -u)" -- "$u"))
		compopt -o nospace 2>/dev/null
		;;
	http://* | https://*) ;;
	*)
		for c in ssh:// http:// https://; do
			[[ $c == "$full"* ]] && cands+=("$c")
		done
		if ((${#cands[@]})); then
			# "-o filenames" would write "ssh\://": mark directories by hand
			while IFS= read -r c; do
				cands+=("$c/")
			done < <(compgen -d -- "$full")
			compopt -o nospace 2>/dev/null
		else
			compopt -o filenames 2>/dev/null
			cands=($(compgen -d -- "$full"))
		fi
		;;
	esac
	if [[ $full == *:* && $COMP_WORDBREAKS == *:* ]]; then
		pre=${full%"${full##*:}"}
		for c in "${!cands[@]}"; do
			cands[c]=${cands[c]#"$pre"}
		done
	fi
	COMPREPLY=("${cands[@]}")
}

_mq_replicate()
{
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
	local key= i end= src= nargs=0 line full
	local -a w

	COMPREPLY=()

	# the value of an "=" word: key is what stands before the '='
	if [[ $cur == = ]]; then
		key=$prev
		cur=
	elif [[ $prev == = ]] && ((COMP_CWORD >= 2)); then
		key=${COMP_WORDS[COMP_CWORD - 2]}
	elif [[ $prev == -[!-]* ]]; then
		_mq_replicate_cluster "$prev"
		[[ -n $_mq_replicate_next ]] && key=-d
	else
		key=$prev
	fi
	case $key in
	-d | --dir)
		compopt -o filenames 2>/dev/null
		COMPREPLY=($(compgen -d -- "$cur"))
		return
		;;
	--token-file)
		compopt -o filenames 2>/dev/null
		COMPREPLY=($(compgen -f -- "$cur"))
		return
		;;
	--id)
		return
		;;
	esac
	[[ $prev == = ]] && return

	# the word as typed, and the words before it, from the line itself:
	# COMP_WORDS has "ssh://h/x" in three pieces
	line=${COMP_LINE:0:COMP_POINT}
	full=${line##*[[:space:]]}
	line=${line%"$full"}
	read -r -a w <<<"$line"
	for ((i = 1; i < ${#w[@]}; i++)); do
		if [[ -z $end ]]; then
			case ${w[i]} in
			--) end=1; continue ;;
			--*=*) continue ;;
			--*)
				[[ " ${_mq_replicate_long_args//[$'\t\n']/ } " == *" ${w[i]} "* ]] &&
					i=$((i + 1))
				continue
				;;
			-?*)
				_mq_replicate_cluster "${w[i]}"
				[[ -n $_mq_replicate_next ]] && i=$((i + 1))
				continue
				;;
			esac
		fi
		((nargs == 0)) && src=${w[i]}
		nargs=$((nargs + 1))
	done

	if [[ $full == -* && -z $end ]]; then
		COMPREPLY=($(compgen -W "$_mq_replicate_opts" -- "$cur"))
		return
	fi

	if ((nargs == 0)); then
		_mq_replicate_source "$full"
		return
	fi

	# every further argument is a TOPIC of a SOURCE directory
	case $src in
	http://* | https://* | ssh://*) return ;;
	esac
	[[ $src == \~* ]] && src=$HOME${src#\~}
	local prog=mq-topic self=${COMP_WORDS[0]}
	[[ $self == */* && -x ${self%/*}/$prog ]] && prog=${self%/*}/$prog
	[[ -d $src ]] &&
		COMPREPLY=($(compgen -W "$("$prog" -d "$src" list 2>/dev/null)" -- "$cur"))
}

complete -F _mq_replicate mq-replicate
