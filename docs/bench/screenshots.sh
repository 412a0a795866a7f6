#!/usr/bin/env bash
# screenshots.sh: the README's dashboard pictures (docs/img/dashboard-*.png)
# from a real study. Trains the studies on the built-in MNIST, then has
# TestScreenshots open their pages in headless Chromium and save them.
#
#   docs/bench/screenshots.sh [DB [IMGDIR]]
#
# DB      SQLite file for the studies (default /tmp/effnas-screenshots/effnas.db).
#         When it exists, the trainings are skipped and only the pictures
#         are taken; TRAIN=yes trains anyway (adding three studies to it).
# IMGDIR  where the four PNGs go (default docs/img of this repository: the
#         README's pictures)
#
# The trainings, on 2 cores (nothing else running):
#
#   go run ./cmd/effnas search --db DB                                   # the default search, about 5 minutes
#   go run ./cmd/effnas grid --db DB                                     # the default grid on its B0, about 9 minutes
#   go run ./cmd/effnas search --db DB --controller random --trials 30   # about a minute
#
# The pictures show the grid, the search whose B0 it scaled, and that
# search beside the random one on the compare page. (These are the README
# walkthrough's first two commands, with a database named.) An
# interrupted training is finished with
# 'go run ./cmd/effnas resume --db DB' (then run this script again). The
# pictures are then taken by
#
#   EFFNAS_SCREENSHOTS=IMGDIR EFFNAS_SCREENSHOTS_DB=DB \
#     go test -count=1 -v ./cmd/effnas/dashboard -run 'TestScreenshots$'
#
# which needs Chromium (apt-get install chromium, or EFFNAS_CHROMIUM=path)
# and serves DB read-only; its comment says which study goes in which
# picture, and it fails, saying what is missing, on a database without them.
set -euo pipefail
case ${1:-} in -h | --help) sed -n '2,32p' "$0"; exit 0 ;; esac
repo=$(cd "$(dirname "$0")/../.." && pwd)
db=${1:-/tmp/effnas-screenshots/effnas.db}
img=${2:-$repo/docs/img}
mkdir -p "$(dirname "$db")" "$img"
db=$(cd "$(dirname "$db")" && pwd)/$(basename "$db")
img=$(cd "$img" && pwd)
cd "$repo"

if [ ! -e "$db" ] || [ "${TRAIN:-}" = yes ]; then
	go run ./cmd/effnas search --db "$db" --name "evolution b0"
	go run ./cmd/effnas grid --db "$db" --name "compound grid"
	go run ./cmd/effnas search --db "$db" --name "random b0" --controller random --trials 30
else
	echo "screenshots.sh: $db exists: no training, pictures only (TRAIN=yes trains anyway)" >&2
fi

EFFNAS_SCREENSHOTS=$img EFFNAS_SCREENSHOTS_DB=$db \
	go test -count=1 -v ./cmd/effnas/dashboard -run 'TestScreenshots$'
