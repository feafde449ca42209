#!/bin/sh
# The README's heatmap picture: where people walked in the PETS 2009 clip (vtest.avi, from
# Debian's opencv-doc; the tests fetch it into ~/.cache/vflow), shrunk to half size.
#
#   sh examples/heatmap.sh [CLIP] [OUT.png]        (`make pictures` runs it)
set -eu
clip=${1:-}
[ -n "$clip" ] || clip=$(python3 -c 'from tests.video_support import vtest_avi; print(vtest_avi())')
out=${2:-docs/heatmap.png}
full=$(mktemp --suffix=.png)
trap 'rm -f "$full"' EXIT
vflow read "$clip" | vflow detect | vflow track | vflow heatmap "$full"
python3 - "$full" "$out" <<'PY'
import sys

import cv2

picture = cv2.imread(sys.argv[1])
half = cv2.resize(picture, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
cv2.imwrite(sys.argv[2], half, [cv2.IMWRITE_PNG_COMPRESSION, 9])
PY
echo "$out"
