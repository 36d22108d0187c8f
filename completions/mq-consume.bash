# bash completion for mq-consume(1).
#
# Completes the options (the same table as cmd/mq-consume.c), the values
# of -o/--offset, --reset-offsets, --commit, --offset-reset and
# --isolation, directories after -d/--dir, topic names for the TOPIC
# arguments and after --dlq, from `mq-topic list`, group names after
# -g/--group, from the groups/ directory, and commands and file names
# after -x/--exec, all in the data directory given on the line with
# -d/--dir (else $MQ_DIR, $XDG_DATA_HOME/mq or ~/.local/share/mq, as the
# programs choose it), and file names after --token-file.  A data
# directory on another host is not asked for its topics over ssh, which
# might ask for a password in the middle of the line.  Needs nothing from
# the bash-completion package.
#
# bash splits words at '=', so "--offset-reset=earliest" arrives as
# "--offset-reset" "=" "earliest"; the word being completed is then only
# the part after the '='.

_mq_consume_opts='-c --count -d --dir -e --exit -f --format -g --group -h --help
	-J --json -o --offset -p --partition -V --version -x --exec --batch
	--commit --dlq --force --grep --isolation --key --offset-reset --raw
	--reset-offsets --retries --skip-corrupt --token-file --until'

# Options that take a value, as getopt_long sees them.
_mq_consume_short_args='cdfgopx'
_mq_consume_long_args='--count --dir --format --group --offset --partition
	--exec --batch --commit --dlq --grep --isolation --key --offset-reset
	--reset-offsets --retries --token-file --until'

# The data directory given on the line with -d/--dir, or empty.
_mq_consume_dir()
{
	local i w dir=

	for ((i = 1; i < ${#COMP_WORDS[@]}; i++)); do
		w=${COMP_WORDS[i]}
		case $w in
		-d | --dir)
			dir=${COMP_WORDS[i + 1]}
			[[ $dir == = ]] && dir=${COMP_WORDS[i + 2]}
			;;
		-d?*) dir=${w#-d} ;;
		esac
	done
	[[ $dir == \~* ]] && dir=$HOME${dir#\~}
	printf '%s' "$dir"
}

# Runs PROG (mq-topic, the one next to the program being completed when
# it was given by path) with the -d of the command line.
_mq_consume_run()
{
	local prog=$1 dir self=${COMP_WORDS[0]}

	shift
	dir=$(_mq_consume_dir)
	[[ ${dir:-$MQ_DIR} == ssh://* ]] && return
	[[ $self == */* && -x ${self%/*}/$prog ]] && prog=${self%/*}/$prog
	if [[ -n $dir ]]; then
		"$prog" -d "$dir" "$@" 2>/dev/null
	else
		"$prog" "$@" 2>/dev/null
	fi
}

# The groups of the data directory: the names in DIR/groups.
_mq_consume_groups()
{
	local dir g

	dir=$(_mq_consume_dir)
	if [[ -z $dir ]]; then
		if [[ -n $MQ_DIR ]]; then
			dir=$MQ_DIR
		elif [[ $XDG_DATA_HOME == /* ]]; then
			dir=$XDG_DATA_HOME/mq
		elif [[ -n $HOME ]]; then
			dir=$HOME/.local/share/mq
		fi
	fi
	[[ -n $dir && -d $dir/groups ]] || return
	for g in "$dir"/groups/*/; do
		g=${g%/}
		g=${g##*/}
		[[ $g == [A-Za-z0-9._-]* && $g != *[!A-Za-z0-9._-]* && $g != . && $g != .. ]] &&
			printf '%s\n' "$g"
	done
}

# For a word of short options ("-eJo", "-gGROUP"), sets _mq_consume_letter
# to its first letter that takes a value (empty when none), and
# _mq_consume_next to 1 when that value is the next word.
_mq_consume_cluster()
{
	local w=${1#-} k

	_mq_consume_letter= _mq_consume_next=
	for ((k = 0; k < ${#w}; k++)); do
		if [[ $_mq_consume_short_args == *"${w:k:1}"* ]]; then
			_mq_consume_letter=${w:k:1}
			((k == ${#w} - 1)) && _mq_consume_next=1
			return
		fi
	done
}

_mq_consume()
{
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
	local key= i w end=

	COMPREPLY=()

	# the value of an "=" word: key is what stands before the '='
	if [[ $cur == = ]]; then
		key=$prev
		cur=
	elif [[ $prev == = ]] && ((COMP_CWORD >= 2)); then
		key=${COMP_WORDS[COMP_CWORD - 2]}
	elif [[ $prev == -[!-]* ]]; then
		# "-eo": a last letter that takes a value takes this word
		_mq_consume_cluster "$prev"
		[[ -n $_mq_consume_next ]] && key=-$_mq_consume_letter
	else
		key=$prev
	fi
	case $key in
	-d | --dir)
		compopt -o filenames 2>/dev/null
		COMPREPLY=($(compgen -d -- "$cur"))
		return
		;;
	-o | --offset | --reset-offsets)
		# and N, -N, @TIME, which are typed
		COMPREPLY=($(compgen -W 'beginning end stored earliest latest' -- "$cur"))
		return
		;;
	-g | --group)
		COMPREPLY=($(compgen -W "$(_mq_consume_groups)" -- "$cur"))
		return
		;;
	--dlq)
		COMPREPLY=($(compgen -W "$(_mq_consume_run mq-topic list)" -- "$cur"))
		return
		;;
	-x | --exec)
		compopt -o filenames 2>/dev/null
		COMPREPLY=($({ compgen -c -- "$cur"; compgen -f -- "$cur"; } | sort -u))
		return
		;;
	--commit)
		COMPREPLY=($(compgen -W 'auto none' -- "$cur"))
		return
		;;
	--token-file)
		compopt -o filenames 2>/dev/null
		COMPREPLY=($(compgen -f -- "$cur"))
		return
		;;
	--offset-reset)
		COMPREPLY=($(compgen -W 'error earliest latest' -- "$cur"))
		return
		;;
	--isolation)
		COMPREPLY=($(compgen -W 'committed uncommitted' -- "$cur"))
		return
		;;
	-c | --count | -f | --format | -p | --partition | --batch | --retries | \
	--grep | --key | --until)
		return
		;;
	esac
	[[ $prev == = ]] && return

	# is there a "--" before this word?
	for ((i = 1; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		case $w in
		--) end=1; break ;;
		--*)
			if [[ " ${_mq_consume_long_args//[$'\t\n']/ } " == *" $w "* ]]; then
				[[ ${COMP_WORDS[i + 1]} == = ]] && i=$((i + 1))
				i=$((i + 1))
			fi
			;;
		-?*)
			_mq_consume_cluster "$w"
			[[ -n $_mq_consume_next ]] && i=$((i + 1))
			;;
		esac
	done

	if [[ $cur == -* && -z $end ]]; then
		COMPREPLY=($(compgen -W "$_mq_consume_opts" -- "$cur"))
		return
	fi
	# every argument is a TOPIC
	COMPREPLY=($(compgen -W "$(_mq_consume_run mq-topic list)" -- "$cur"))
}

complete -F _mq_consume mq-consume
