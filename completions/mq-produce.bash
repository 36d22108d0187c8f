# bash completion for mq-produce(1).
#
# Completes the options (the same table as cmd/mq-produce.c), the values
# of -z/--compression and --acks, directories after -d/--dir, file names
# after -F/--follow and for the FILE arguments, and the TOPIC from
# `mq-topic list` in the data directory given on the line with -d/--dir
# (else the default one), and file names after --token-file.  A data
# directory on another host is not asked for its topics over ssh, which
# might ask for a password in the middle of the line.  Needs nothing from
# the bash-completion package.
#
# bash splits words at '=', so "--compression=lz4" arrives as
# "--compression" "=" "lz4"; the word being completed is then only the
# part after the '='.

_mq_produce_opts='-0 --null -D --delim -d --dir -F --follow -H --header -h --help
	-K --key-delim -k --key -p --partition -V --version -v --verbose
	-z --compression --acks --batch-size --file-per-record --fsync --json
	--linger --no-create --raw --skip-oversize --tee --acks-timeout
	--token-file'

# Options that take a value, as getopt_long sees them.
_mq_produce_short_args='DdFHKkpz'
_mq_produce_long_args='--delim --dir --follow --header --key-delim --key
	--partition --compression --acks --batch-size --linger --acks-timeout
	--token-file'

# Runs PROG (mq-topic, the one next to the program being completed when
# it was given by path) with the -d of the command line.
_mq_produce_run()
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

# For a word of short options ("-0vz", "-dDIR"), sets _mq_produce_letter
# to its first letter that takes a value (empty when none), and
# _mq_produce_next to 1 when that value is the next word.
_mq_produce_cluster()
{
	local w=${1#-} k

	_mq_produce_letter= _mq_produce_next=
	for ((k = 0; k < ${#w}; k++)); do
		if [[ $_mq_produce_short_args == *"${w:k:1}"* ]]; then
			_mq_produce_letter=${w:k:1}
			((k == ${#w} - 1)) && _mq_produce_next=1
			return
		fi
	done
}

_mq_produce()
{
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
	local key= i w args=0 follow= end=

	COMPREPLY=()

	# the value of an "=" word: key is what stands before the '='
	if [[ $cur == = ]]; then
		key=$prev
		cur=
	elif [[ $prev == = ]] && ((COMP_CWORD >= 2)); then
		key=${COMP_WORDS[COMP_CWORD - 2]}
	elif [[ $prev == -[!-]* ]]; then
		# "-0vz": a last letter that takes a value takes this word
		_mq_produce_cluster "$prev"
		[[ -n $_mq_produce_next ]] && key=-$_mq_produce_letter
	else
		key=$prev
	fi
	case $key in
	-d | --dir)
		compopt -o filenames 2>/dev/null
		COMPREPLY=($(compgen -d -- "$cur"))
		return
		;;
	-F | --follow | --token-file)
		compopt -o filenames 2>/dev/null
		COMPREPLY=($(compgen -f -- "$cur"))
		return
		;;
	-z | --compression)
		COMPREPLY=($(compgen -W 'none uncompressed gzip lz4' -- "$cur"))
		return
		;;
	--acks)
		COMPREPLY=($(compgen -W '1 all' -- "$cur"))
		return
		;;
	-D | --delim | -K | --key-delim | -H | --header | -k | --key | \
	-p | --partition | --batch-size | --linger | --acks-timeout)
		return
		;;
	esac
	[[ $prev == = ]] && return

	# the arguments before this word, skipping options and their values
	for ((i = 1; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		if [[ -n $end ]]; then
			args=$((args + 1))
			continue
		fi
		case $w in
		--) end=1 ;;
		--*)
			[[ $w == --follow ]] && follow=1
			if [[ " ${_mq_produce_long_args//[$'\t\n']/ } " == *" $w "* ]]; then
				[[ ${COMP_WORDS[i + 1]} == = ]] && i=$((i + 1))
				i=$((i + 1))
			fi
			;;
		-?*)
			_mq_produce_cluster "$w"
			[[ $_mq_produce_letter == F ]] && follow=1
			[[ -n $_mq_produce_next ]] && i=$((i + 1))
			;;
		=) ;;
		*) args=$((args + 1)) ;;
		esac
	done

	if [[ $cur == -* && -z $end ]]; then
		COMPREPLY=($(compgen -W "$_mq_produce_opts" -- "$cur"))
		return
	fi
	if ((args == 0)); then
		COMPREPLY=($(compgen -W "$(_mq_produce_run mq-topic list)" -- "$cur"))
	elif [[ -z $follow ]]; then
		compopt -o filenames 2>/dev/null
		COMPREPLY=($(compgen -f -- "$cur"))
	fi
}

complete -F _mq_produce mq-produce
