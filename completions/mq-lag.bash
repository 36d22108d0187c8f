# bash completion for mq-lag(1).
#
# Completes the options (the same table as cmd/mq-lag.c), the values of
# --fail-on, topic names after -t/--topic from `mq-topic list`, file names
# after -o/--output, and group names as arguments, from the first column
# of `mq-lag --summary` (the groups that have committed), in the data
# directory given on the line with -d/--dir or as an address, the first
# argument (else the default one), and file names after --token-file.  A
# data directory on another host is not asked for its groups over ssh,
# which might ask for a password in the middle of the line.  Needs nothing
# from the bash-completion package.
#
# bash splits words at '=', so "--fail-on=warn" arrives as "--fail-on" "="
# "warn"; the word being completed is then only the part after the '='.

_mq_lag_opts='-d --dir -h --help -J --json -o --output -q --quiet -t --topic
	-V --version -w --watch --allowed-lag --fail-on --max-age --max-lag
	--prometheus --summary --token-file --window'

# Runs PROG (mq-lag or mq-topic, the one next to the program being
# completed when it was given by path) with the -d of the command line.
_mq_lag_run()
{
	local prog=$1 i w dir='' self=${COMP_WORDS[0]}

	shift
	for ((i = 1; i < ${#COMP_WORDS[@]}; i++)); do
		w=${COMP_WORDS[i]}
		case $w in
		-d | --dir)
			dir=${COMP_WORDS[i + 1]}
			[[ $dir == = ]] && dir=${COMP_WORDS[i + 2]}
			;;
		-d?*) dir=${w#-d} ;;
		http://* | https://* | ssh://*) [[ -n $dir ]] || dir=$w ;;
		esac
	done
	[[ $dir == \~* ]] && dir=$HOME${dir#\~}
	[[ ${dir:-$MQ_DIR} == ssh://* ]] && return
	[[ $self == */* && -x ${self%/*}/$prog ]] && prog=${self%/*}/$prog
	if [[ -n $dir ]]; then
		"$prog" -d "$dir" "$@" 2>/dev/null
	else
		"$prog" "$@" 2>/dev/null
	fi
}

_mq_lag_groups()
{
	_mq_lag_run mq-lag --summary | awk 'NR > 1 { print $1 }'
}

_mq_lag()
{
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
	local key=

	COMPREPLY=()

	# the value of an "=" word: key is what stands before the '='
	if [[ $cur == = ]]; then
		key=$prev
		cur=
	elif [[ $prev == = ]] && ((COMP_CWORD >= 2)); then
		key=${COMP_WORDS[COMP_CWORD - 2]}
	else
		key=$prev
	fi
	case $key in
	-d | --dir)
		compopt -o filenames 2>/dev/null
		COMPREPLY=($(compgen -d -- "$cur"))
		return
		;;
	-o | --output | --token-file)
		compopt -o filenames 2>/dev/null
		COMPREPLY=($(compgen -f -- "$cur"))
		return
		;;
	-t | --topic)
		COMPREPLY=($(compgen -W "$(_mq_lag_run mq-topic list)" -- "$cur"))
		return
		;;
	--fail-on)
		COMPREPLY=($(compgen -W 'warn stall stop' -- "$cur"))
		return
		;;
	-w | --watch | --window | --max-age | --max-lag | --allowed-lag)
		return
		;;
	esac
	[[ $prev == = ]] && return

	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$_mq_lag_opts" -- "$cur"))
		return
	fi
	COMPREPLY=($(compgen -W "$(_mq_lag_groups)" -- "$cur"))
}

complete -F _mq_lag mq-lag
