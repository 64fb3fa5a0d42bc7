# Shared set-up of the ampbench plots, loaded by every plots/*.gp script after it has set
#   plotname  the images' base name (loss, accuracy, ...)
#   W, H      the image size in pixels
#   rundir    the run folder (the script's ARG1; `load` does not pass ARG1 on)
#   plotsdir  this folder ('' or ending in '/')
# Defines the run's files, the mode list in run order, one colour per recipe (the same in every
# plot), and term_cmd(fmt)/out_path(fmt) for the loop
#   do for [fmt in formats] { eval term_cmd(fmt); set output out_path(fmt); ... }
# which writes RUN_DIR/plots/<plotname>.png (pngcairo) and .svg (or into imagedir when set).
# Data never reaches `eval`: mode names and paths are only used as strings and label text.

if (strlen(rundir) == 0) {
    print "usage: gnuplot -c plots/".plotname.".gp RUN_DIR"
    exit status 2
}
# The run folder's name, for titles (no trailing slash).
if (strlen(rundir) > 1 && rundir[strlen(rundir):] eq '/') { rundir = rundir[1:strlen(rundir)-1] }
basename(p) = strstrt(p, '/') == 0 ? p : basename(p[strstrt(p, '/')+1:])
run_name = basename(rundir)
epochs_csv = rundir.'/epochs.csv'
steps_csv = rundir.'/steps.csv'
derived_dir = rundir.'/plots'
formats = 'png svg'

# The common set-up from a clean state (`reset` keeps variables, terminal and output); the
# multiplot scripts eval it again before each image, since their legend changes many settings.
base_style = "reset; set datafile separator comma; set datafile columnheaders; " \
    . "set encoding utf8; set grid lc rgb '#dddddd' lw 1; set border lc rgb '#444444'; " \
    . "set tics nomirror; set key noenhanced; set style line 100 lc rgb '#888888' dt 3 lw 1"
eval base_style

# pngcairo renders at W x H pixels; the SVG has the same layout, scalable.
term_cmd(fmt) = fmt eq 'png' \
    ? sprintf("set terminal pngcairo size %d,%d enhanced font 'DejaVu Sans,11' linewidth 1.2 background rgb 'white'", W, H) \
    : sprintf("set terminal svg size %d,%d enhanced font 'DejaVu Sans,11' linewidth 1.2 background rgb 'white'", W, H)
# ampbench draws into a private folder (gnuplot -e "imagedir='...'") and renames the finished
# images into plots/, so that an interrupted or failed drawing never replaces a good image.
image_dir = exists('imagedir') ? imagedir : derived_dir
out_path(fmt) = image_dir.'/'.plotname.'.'.fmt

# One colour per recipe, stable across runs and plots; fp32 is the black reference.
mode_color(m) = m eq 'fp32' ? 0x000000 : m eq 'tf32' ? 0x8c564b : m eq 'amp' ? 0x1f77b4 \
    : m eq 'amp-static' ? 0x17becf : m eq 'amp-noscale' ? 0xff7f0e : m eq 'bf16' ? 0x2ca02c \
    : m eq 'fp16-pure' ? 0xd62728 : 0x9467bd

# The modes of epochs.csv in the order they appear (the run's order), fp32 apart.
modes = ''
stats epochs_csv using (m_ = strcol(1), \
    strstrt(' '.modes.' ', ' '.m_.' ') == 0 ? (modes = modes.' '.m_, 0) : 0) nooutput
nmodes = words(modes)
stats epochs_csv using (column('epoch')) nooutput
nepochs = int(STATS_max)
others = ''
has_fp32 = 0
do for [m in modes] {
    if (m eq 'fp32') { has_fp32 = 1 } else { others = others.' '.m }
}
nothers = words(others)
# Overlapping curves (recipes that agree) stay visible: earlier modes are drawn wider.
other_lw(i) = 1.5 + 1.2 * (nothers - i)

# The shared legend of a multiplot, in one centred row at screen height legend_y, drawn by hand
# (a gnuplot key is sized to one panel and wraps): fill leg_text, leg_color, leg_lw, leg_dashed,
# leg_open (arrays of leg_n entries; see legend.gp), then after the panels `eval legend_setup`
# and `load plotsdir.'legend.gp'`.
legend_setup = "set origin 0,0; set size 1,1; set lmargin at screen 0; " \
    . "set rmargin at screen 1; set tmargin at screen 1; set bmargin at screen 0; " \
    . "unset border; unset tics; unset xlabel; unset ylabel; unset title; unset grid; " \
    . "unset label; unset arrow; unset logscale; unset key; set xrange [0:1]; set yrange [0:1]"

# Powers as tic labels with Unicode superscripts (2¹⁶, 10⁻⁷): plain text that every PNG and SVG
# renderer shows the same, unlike enhanced-text superscripts.
supdigit(d) = d == 0 ? '⁰' : d == 1 ? '¹' : d == 2 ? '²' : d == 3 ? '³' : d == 4 ? '⁴' \
    : d == 5 ? '⁵' : d == 6 ? '⁶' : d == 7 ? '⁷' : d == 8 ? '⁸' : '⁹'
sup(n) = n < 0 ? '⁻'.sup(-n) : n < 10 ? supdigit(n) : sup(int(n / 10)).supdigit(n % 10)
# "set ytics (...)" with base^k for k = kmin..kmax in steps of kstep (numbers only); eval it.
power_tics(base, kmin, kmax, kstep) = 'set ytics (' . power_list(base, kmin, kmax, kstep) . ')'
power_list(base, k, kmax, kstep) = sprintf('"%d%s" %.17g', base, sup(k), base ** (k * 1.0)) \
    . (k + kstep <= kmax ? ', ' . power_list(base, k + kstep, kmax, kstep) : '')
