# bash completion for mq-serve(1).
#
# Completes the options (the same table as cmd/mq-serve.c), directories
# after -d/--dir and file names after --token-file.  The values of
# -l/--listen, --max-body, --max-connections and --timeout are typed.
# Needs nothing from the bash-completion package.
#
# bash splits words at '=', so "--dir=/srv" arrives as "--dir" "=" "/srv";
# the word being completed is then only the part after the '='.

_mq_serve_opts='-d --dir -h --help -l --listen -q --quiet -V --version
	-v --verbose --max-body --max-connections --read-only --stdio --timeout
	--token-file'

_mq_serve()
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
	--token-file)
		compopt -o filenames 2>/dev/null
		COMPREPLY=($(compgen -f -- "$cur"))
		return
		;;
	-l | --listen | --max-body | --max-connections | --timeout)
		return
		;;
	esac
	[[ $prev == = ]] && return

	# mq-serve takes no arguments: only options
	COMPREPLY=($(compgen -W "$_mq_serve_opts" -- "$cur"))
}

complete -F _mq_serve mq-serve
