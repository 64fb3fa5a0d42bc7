# Draws the legend row described in style.gp (leg_n entries at screen height legend_y, centred
# in an image W pixels wide) as arrows, points and labels, then an empty plot to show them.
# leg_open[i]: 0 a filled point on the line sample, 1 an open point, 2 none (a band's swatch).
leg_cw = 7.4     # pixels per character of the 11 pt font (DejaVu Sans, a generous average)
leg_sample = 40.0
leg_gap = 7.0
leg_pad = 28.0
leg_total = 0
do for [i=1:leg_n] {
    leg_total = leg_total + leg_sample + leg_gap + leg_cw * strlen(leg_text[i]) + (i < leg_n ? leg_pad : 0)
}
leg_x = (W - leg_total) / 2.0
do for [i=1:leg_n] {
    leg_x0 = leg_x / W
    leg_x1 = (leg_x + leg_sample) / W
    if (leg_dashed[i]) {
        set arrow from screen leg_x0, screen legend_y to screen leg_x1, screen legend_y nohead \
            lw leg_lw[i] lc rgb leg_color[i] dt 2 front
    } else {
        set arrow from screen leg_x0, screen legend_y to screen leg_x1, screen legend_y nohead \
            lw leg_lw[i] lc rgb leg_color[i] dt 1 front
    }
    if (leg_open[i] == 1) {
        set label '' at screen (leg_x0 + leg_x1) / 2, screen legend_y point pt 6 ps 1.2 lc rgb leg_color[i] front
    }
    if (leg_open[i] == 0) {
        set label '' at screen (leg_x0 + leg_x1) / 2, screen legend_y point pt 7 ps 0.9 lc rgb leg_color[i] front
    }
    set label leg_text[i] at screen (leg_x + leg_sample + leg_gap) / W, screen legend_y left noenhanced front
    leg_x = leg_x + leg_sample + leg_gap + leg_cw * strlen(leg_text[i]) + leg_pad
}
plot NaN notitle
