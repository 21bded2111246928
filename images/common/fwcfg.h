/* SPDX-License-Identifier: MIT */
/*
 * QEMU's fw_cfg device through its legacy I/O ports (selector 0x510, data
 * 0x511). fwcfg_report() prints "fw_cfg: <signature>" ("none" when nothing
 * printable answers) and, when the signature is "QEMU", also
 * "fw_cfg: cpus <n> ram <MiB> MiB".
 */
#ifndef IMAGES_FWCFG_H
#define IMAGES_FWCFG_H

void fwcfg_report(void);

#endif /* IMAGES_FWCFG_H */
