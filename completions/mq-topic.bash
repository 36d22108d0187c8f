# bash completion for mq-topic(1).
#
# Completes the commands, the options each command takes (the same table
# as cmd/mq-topic.c), configuration keys and their values after -c, topic
# names from `mq-topic list` in the data directory given on the line with
# -d/--dir (else the default one), segment files and directories for
# dump, and file names after --token-file.  A data directory on another
# host is not asked for its topics over ssh, which might ask for a
# password in the middle of the line.  Needs nothing from the
# bash-completion package.
#
# bash splits words at '=', so "--dir=/x" arrives as "--dir" "=" "/x" and
# "-c retention.ms=7d" as "-c" "retention.ms" "=" "7d"; the word being
# completed is then only the part after the '='.

_mq_topic_commands='create list describe alter delete verify gc dump'
_mq_topic_config_keys='partitions retention.ms retention.bytes segment.bytes
	segment.ms compression.type max.message.bytes cleanup.policy
	min.insync.replicas index.interval.bytes'

# Prints the topics of the data directory named on the command line.
_mq_topic_topics()
{
	local prog=${COMP_WORDS[0]} i w dir=

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
	[[ $prog == */* && -x $prog ]] || type -P "$prog" >/dev/null 2>&1 || prog=mq-topic
	if [[ -n $dir ]]; then
		"$prog" -d "$dir" list 2>/dev/null
	else
		"$prog" list 2>/dev/null
	fi
}

# Segment and index files, and directories (partition directories).
_mq_topic_files()
{
	local f

	compopt -o filenames 2>/dev/null
	COMPREPLY=($(compgen -d -- "$1"))
	while IFS= read -r f; do
		case $f in
		*.log | *.index | *.timeindex) COMPREPLY+=("$f") ;;
		esac
	done < <(compgen -f -- "$1")
}

_mq_topic()
{
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
	local key= cmd= opts i w args=0

	COMPREPLY=()

	# the value of an "=" word: key is what stands before the '='
	if [[ $cur == = ]]; then
		key=$prev
		cur=
	elif [[ $prev == = ]] && ((COMP_CWORD >= 2)); then
		key=${COMP_WORDS[COMP_CWORD - 2]}
	fi
	case $key in
	'') ;;
	--dir)
		compopt -o filenames 2>/dev/null
		COMPREPLY=($(compgen -d -- "$cur"))
		return
		;;
	--token-file)
		compopt -o filenames 2>/dev/null
		COMPREPLY=($(compgen -f -- "$cur"))
		return
		;;
	compression.type)
		COMPREPLY=($(compgen -W 'producer uncompressed gzip snappy lz4 zstd' -- "$cur"))
		return
		;;
	cleanup.policy)
		COMPREPLY=($(compgen -W 'delete compact' -- "$cur"))
		return
		;;
	--config)
		compopt -o nospace 2>/dev/null
		COMPREPLY=($(compgen -S = -W "$_mq_topic_config_keys" -- "$cur"))
		return
		;;
	*) return ;;
	esac

	case $prev in
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
	-p | --partitions)
		return
		;;
	-c | --config)
		compopt -o nospace 2>/dev/null
		COMPREPLY=($(compgen -S = -W "$_mq_topic_config_keys" -- "$cur"))
		return
		;;
	esac

	# the command, and how many arguments it has before this word
	for ((i = 1; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		if [[ $w == = ]]; then
			i=$((i + 1))
			continue
		fi
		case $w in
		-d | --dir | -p | --partitions | -c | --config | --token-file)
			[[ ${COMP_WORDS[i + 1]} == = ]] || i=$((i + 1))
			;;
		-*) ;;
		*)
			if [[ -z $cmd ]]; then
				cmd=$w
			else
				args=$((args + 1))
			fi
			;;
		esac
	done

	if [[ -z $cmd ]]; then
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W '-d --dir -h --help -V --version --token-file' -- "$cur"))
		else
			COMPREPLY=($(compgen -W "$_mq_topic_commands" -- "$cur"))
		fi
		return
	fi

	case $cmd in
	create) opts='-p --partitions -c --config --if-not-exists' ;;
	describe) opts='-J --json' ;;
	alter) opts='-p --partitions -c --config' ;;
	verify) opts='--repair' ;;
	dump) opts='--records' ;;
	*) opts= ;;
	esac
	if [[ $cur == -* ]]; then
		[[ $cmd == dump ]] || opts="$opts -d --dir --token-file"
		COMPREPLY=($(compgen -W "$opts" -- "$cur"))
		return
	fi

	case $cmd in
	describe | delete | verify | gc)
		COMPREPLY=($(compgen -W "$(_mq_topic_topics)" -- "$cur"))
		;;
	alter)
		((args == 0)) && COMPREPLY=($(compgen -W "$(_mq_topic_topics)" -- "$cur"))
		;;
	dump)
		_mq_topic_files "$cur"
		;;
	esac
}

complete -F _mq_topic mq-topic
