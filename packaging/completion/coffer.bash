# bash completion for coffer(1)                          -*- shell-script -*-
#
# Installed as /usr/share/bash-completion/completions/coffer. Completes the
# commands, each command's options (as 'coffer help COMMAND' lists them;
# tests/integration/test_man_pages.sh checks that every one is offered), and
# the values of some options: files, the source names and repository names
# of the configuration file (read from its [source NAME] and
# [repository NAME] headers when the file is readable; coffer is not run),
# and the fixed words of --status, --older-than, --log-format, --timeline,
# --target-action and --archive-mode.

# The configuration file the command line will use: --config / -c before the
# command word, else $COFFER_CONFIG, else the default.
_coffer_config()
{
	local i w f=""
	for ((i = 1; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		case $w in
		-c | --config)
			((i++))
			# --config=FILE arrives as three words: --config = FILE.
			[[ ${COMP_WORDS[i]-} == = ]] && ((i++))
			((i < COMP_CWORD)) && f=${COMP_WORDS[i]}
			;;
		-c?*) f=${w#-c} ;;
		-*) ;;
		*) break ;;
		esac
	done
	[[ -n $f ]] || f=${COFFER_CONFIG:-/etc/coffer/coffer.conf}
	[[ $f == \~/* ]] && f=$HOME/${f#\~/}
	printf '%s\n' "$f"
}

# The names of the [KIND NAME] sections of the configuration (KIND: source or
# repository), if it can be read.
_coffer_names()
{
	local f
	f=$(_coffer_config)
	[[ -f $f && -r $f ]] || return 0
	sed -n 's/^[[:blank:]]*\[[[:blank:]]*'"$1"'[[:blank:]]\{1,\}\([A-Za-z0-9._-]\{1,\}\)[[:blank:]]*\].*/\1/p' \
		-- "$f" 2>/dev/null
}

_coffer_reply_words()
{
	mapfile -t COMPREPLY < <(compgen -W "$1" -- "$cur")
}

_coffer_reply_files()
{
	if declare -F _filedir >/dev/null; then
		_filedir
	else
		compopt -o filenames 2>/dev/null
		mapfile -t COMPREPLY < <(compgen -f -- "$cur")
	fi
}

_coffer()
{
	local cur prev
	local commands="backup list show restore ls keygen replicate prune verify status check wal-push wal-fetch catalog repo help"
	# The global options: before the command word, and (all but --config and
	# --version) after it.
	local globals="-c --config --json -q --quiet -v --verbose --log-format -h --help --version"
	local after="--json -q --quiet -v --verbose --log-format -h --help"
	# Options that take a value, whatever the command.
	local takes_value=" -c --config --stdin --source --status --since --host --to --to-database --database --from -i --identity --object --include --namespace --kind -o --output --target --older-than --log-format --to-datadir --at --lsn --backup --timeline --target-action --tablespace-map --archive-mode "
	local -A options=(
		[backup]="--stdin --allow-empty --dry-run --wait"
		[list]="--source --status --since --host --json"
		[show]="--source --json"
		[restore]="--to --stdout --to-database --database --globals --clean --source --from -i --identity --object --include --namespace --kind --print-apply-order --trust-unsigned --to-datadir --at --lsn --latest --immediate --backup --timeline --target-action --tablespace-map --archive-mode"
		[ls]="--json -i --identity --source --trust-unsigned"
		[keygen]="-o --output --signing"
		[replicate]="--all --to"
		[prune]="--dry-run --source --target"
		[verify]="--latest --all --drill --source --target --identity"
		[status]=""
		[check]=""
		[wal-push]="--source --background"
		[wal-fetch]="--source --identity -i --background"
		[catalog]="--trust-unsigned"
		[repo]="--older-than"
		[help]=""
	)
	local i w cmd="" sub="" npos=0

	COMPREPLY=()
	cur=${COMP_WORDS[COMP_CWORD]-}
	prev=
	((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
	# --option=VALUE: the words are --option, = and VALUE.
	if [[ $cur == = ]]; then
		cur=
	elif [[ $prev == = ]] && ((COMP_CWORD > 1)); then
		prev=${COMP_WORDS[COMP_CWORD - 2]}
	fi

	# The command word, its subcommand, and how many other words it has.
	for ((i = 1; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		if [[ $w == = ]]; then
			continue
		elif [[ $w == -* ]]; then
			if [[ $takes_value != *" $w "* ]]; then
				:
			elif [[ ${COMP_WORDS[i + 1]-} == = ]]; then
				((i += 2))
			else
				((i++))
			fi
		elif [[ -z $cmd ]]; then
			cmd=$w
		elif [[ ($cmd == catalog || $cmd == repo) && -z $sub ]]; then
			sub=$w
		else
			((npos++))
		fi
	done

	case $prev in
	-c | --config | -i | --identity | -o | --output)
		_coffer_reply_files
		return 0
		;;
	--to-datadir)
		if declare -F _filedir >/dev/null; then
			_filedir -d
		else
			compopt -o filenames 2>/dev/null
			mapfile -t COMPREPLY < <(compgen -d -- "$cur")
		fi
		return 0
		;;
	--timeline)
		_coffer_reply_words "latest"
		return 0
		;;
	--target-action)
		_coffer_reply_words "promote pause shutdown"
		return 0
		;;
	--archive-mode)
		_coffer_reply_words "off preserve"
		return 0
		;;
	--to)
		if [[ $cmd == replicate ]]; then
			_coffer_reply_words "primary $(_coffer_names repository)"
		else
			_coffer_reply_files
		fi
		return 0
		;;
	--source)
		_coffer_reply_words "$(_coffer_names source)"
		return 0
		;;
	--target | --from)
		_coffer_reply_words "primary $(_coffer_names repository)"
		return 0
		;;
	--status)
		_coffer_reply_words "running complete failed partial"
		return 0
		;;
	--older-than)
		_coffer_reply_words "0 90s 30m 24h 7d"
		return 0
		;;
	--log-format)
		_coffer_reply_words "text json"
		return 0
		;;
	--stdin | --since | --host | --to-database | --database | --object | --include | --namespace | --kind | --at | --lsn | --backup | --tablespace-map)
		return 0
		;;
	esac

	if [[ -z $cmd ]]; then
		if [[ $cur == -* ]]; then
			_coffer_reply_words "$globals"
		else
			_coffer_reply_words "$commands"
		fi
		return 0
	fi
	if [[ $cur == -* ]]; then
		[[ ($cmd == catalog || $cmd == repo) && -z $sub ]] && return 0
		_coffer_reply_words "${options[$cmd]-} $after"
		return 0
	fi
	case $cmd in
	backup | status | check)
		_coffer_reply_words "$(_coffer_names source)"
		;;
	catalog)
		[[ -z $sub ]] && _coffer_reply_words "rebuild"
		;;
	repo)
		[[ -z $sub ]] && _coffer_reply_words "cleanup"
		;;
	help)
		((npos == 0)) && _coffer_reply_words "$commands"
		;;
	show | restore | ls | verify | replicate)
		((npos == 0)) && _coffer_reply_words "latest"
		;;
	wal-push)
		((npos == 0)) && _coffer_reply_files
		;;
	wal-fetch)
		((npos == 1)) && _coffer_reply_files
		;;
	esac
	return 0
}

complete -F _coffer coffer
