"""Curated antibody target names -> the gene that encodes the antigen.

Antibody panels (CITE-seq/TotalSeq, BioLegend and BD catalogues, ECCITE, REAP-seq, RPPA) name a
protein by its antigen, not by its gene, and the NCBI alias table that the symbol lookup uses does
not know which gene a panel means when a name is an alias of several genes: ``CD25`` is an alias of
ISG20 as well as of IL2RA, ``CD16`` of FCGR3B as well as FCGR3A, ``CD20`` of KRT20 as well as MS4A1,
``p21`` of a histone pseudogene as well as CDKN1A. A pre-trained model learns one embedding per
protein id across panels, so such a name must resolve to the gene the antibody binds, or ``CD25`` in
one panel and ``IL2RA`` in another become two unrelated proteins. This table is consulted *before* the
alias table for antibody panels (see :mod:`gene_ids`).

Sources, by the ``rule`` column:

* ``hcdm``: the HCDM CD nomenclature (Human Cell Differentiation Molecules, hcdm.org; CD1-CD371),
  each CD name to the HGNC symbol of the molecule it designates; letter suffixes name the chain or
  family member (CD49d = ITGA4, CD158e1 = KIR3DL1).
* ``complex``: a CD name that designates a complex maps to the chain the standard antibody clones
  bind: CD3 -> CD3E (UCHT1, OKT3, SK7, HIT3a bind CD3-epsilon), CD8 -> CD8A (SK1, RPA-T8 bind
  CD8-alpha), HLA-DR -> HLA-DRA (L243 needs the DR alpha chain), TCR alpha/beta -> TRAC, TCR
  gamma/delta -> TRGC1; a name listing several genes (HLA-A,B,C) maps to the first listed.
* ``glycan``: a carbohydrate antigen maps to the glycosyltransferase that makes it (CD15 = Lewis X,
  FUT4; CD57 = HNK-1, B3GAT1; CD77 = Gb3, A4GALT), since no gene encodes the epitope itself.
* ``isoform``: an isoform-restricted epitope (CD45RA, CD45RB, CD45RO) keeps the vocabulary's own
  record for that isoform when the vocabulary has one, so it never collides with total CD45 in one
  panel; its gene is the one listed (PTPRC). B220/CD45R has no such record and maps to PTPRC.
* ``panel``: common non-CD names on TotalSeq, BioLegend and BD panels (PD-1, TIGIT, FceRIa, IgM, ...).
* ``mouse``: antigen names of mouse panels with no CD or gene name, mapped to the human ortholog of the gene
  the antibody binds (F4/80 = Adgre1 -> ADGRE1, NK-1.1 = Klrb1c -> KLRB1, I-A/I-E = MHC class II -> HLA-DRA
  as ``MHCII`` on human panels; CD8b.1/CD8b.2, the two alleles of Cd8b1, -> CD8B). Mouse antigens whose gene
  has no human ortholog (Ly-6C, Ly-6G, Gr-1, Ter119 = Ly76, Sca-1 = Ly6a, Siglec-F, Siglec-H) are listed in
  :data:`NO_HUMAN_GENE`: they stay unmapped, where the alias tables would send them to an unrelated gene
  (``Sca-1`` is an alias of ATXN1, ``Sca1`` of CASP3's).
* ``rppa``: antibody names of the MD Anderson RPPA core as TCGA distributes them (gene per the
  core's antibody list), including the cohorts' spelling variants (``LBK1``, ``XPB1``: each occurs
  only in cohorts whose array lacks the correctly spelled antibody).

Names are compared after removing spaces, hyphens and underscores, writing Greek letters as Latin ones and
lower-casing (``PD-1``, ``pd1`` and ``PD_1`` are one name; so are ``TCR Vα7.2`` and ``TCRVa7.2``). Names with no
single gene (e.g. the RPPA ``Mitochondria`` antibody) are deliberately absent and stay unmapped.
"""

from __future__ import annotations

import re
from typing import NamedTuple

__all__ = ["AntibodyTarget", "ANTIBODY_TARGETS", "NO_HUMAN_GENE", "antibody_key"]

# name, gene symbol, rule. Tab-separated; '#' starts a comment line.
_TABLE = """
# ---- hcdm: CD1-CD371
CD1a	CD1A	hcdm
CD1b	CD1B	hcdm
CD1c	CD1C	hcdm
CD1d	CD1D	hcdm
CD1e	CD1E	hcdm
CD2	CD2	hcdm
CD3	CD3E	complex
CD3d	CD3D	hcdm
CD3e	CD3E	hcdm
CD3g	CD3G	hcdm
CD4	CD4	hcdm
CD5	CD5	hcdm
CD6	CD6	hcdm
CD7	CD7	hcdm
CD8	CD8A	complex
CD8a	CD8A	hcdm
CD8b	CD8B	hcdm
CD9	CD9	hcdm
CD10	MME	hcdm
CD11a	ITGAL	hcdm
CD11b	ITGAM	hcdm
CD11c	ITGAX	hcdm
CD11d	ITGAD	hcdm
CD13	ANPEP	hcdm
CD14	CD14	hcdm
CD15	FUT4	glycan
CD16	FCGR3A	hcdm
CD16a	FCGR3A	hcdm
CD16b	FCGR3B	hcdm
CD18	ITGB2	hcdm
CD19	CD19	hcdm
CD20	MS4A1	hcdm
CD21	CR2	hcdm
CD22	CD22	hcdm
CD23	FCER2	hcdm
CD24	CD24	hcdm
CD25	IL2RA	hcdm
CD26	DPP4	hcdm
CD27	CD27	hcdm
CD28	CD28	hcdm
CD29	ITGB1	hcdm
CD30	TNFRSF8	hcdm
CD31	PECAM1	hcdm
CD32	FCGR2A	hcdm
CD32a	FCGR2A	hcdm
CD32b	FCGR2B	hcdm
CD32c	FCGR2C	hcdm
CD33	CD33	hcdm
CD34	CD34	hcdm
CD35	CR1	hcdm
CD36	CD36	hcdm
CD37	CD37	hcdm
CD38	CD38	hcdm
CD39	ENTPD1	hcdm
CD40	CD40	hcdm
CD41	ITGA2B	hcdm
CD42a	GP9	hcdm
CD42b	GP1BA	hcdm
CD42c	GP1BB	hcdm
CD42d	GP5	hcdm
CD43	SPN	hcdm
CD44	CD44	hcdm
CD45	PTPRC	hcdm
CD45R	PTPRC	isoform
B220	PTPRC	isoform
CD45RA	PTPRC	isoform
CD45RB	PTPRC	isoform
CD45RO	PTPRC	isoform
CD46	CD46	hcdm
CD47	CD47	hcdm
CD48	CD48	hcdm
CD49a	ITGA1	hcdm
CD49b	ITGA2	hcdm
CD49c	ITGA3	hcdm
CD49d	ITGA4	hcdm
CD49e	ITGA5	hcdm
CD49f	ITGA6	hcdm
CD50	ICAM3	hcdm
CD51	ITGAV	hcdm
CD52	CD52	hcdm
CD53	CD53	hcdm
CD54	ICAM1	hcdm
CD55	CD55	hcdm
CD56	NCAM1	hcdm
CD57	B3GAT1	glycan
CD58	CD58	hcdm
CD59	CD59	hcdm
CD61	ITGB3	hcdm
CD62E	SELE	hcdm
CD62L	SELL	hcdm
CD62P	SELP	hcdm
CD63	CD63	hcdm
CD64	FCGR1A	hcdm
CD66a	CEACAM1	hcdm
CD66b	CEACAM8	hcdm
CD66c	CEACAM6	hcdm
CD66d	CEACAM3	hcdm
CD66e	CEACAM5	hcdm
CD66f	PSG1	hcdm
CD68	CD68	hcdm
CD69	CD69	hcdm
CD70	CD70	hcdm
CD71	TFRC	hcdm
CD72	CD72	hcdm
CD73	NT5E	hcdm
CD74	CD74	hcdm
CD75	ST6GAL1	glycan
CD77	A4GALT	glycan
CD79a	CD79A	hcdm
CD79b	CD79B	hcdm
CD80	CD80	hcdm
CD81	CD81	hcdm
CD82	CD82	hcdm
CD83	CD83	hcdm
CD84	CD84	hcdm
CD85a	LILRB3	hcdm
CD85d	LILRB2	hcdm
CD85g	LILRA4	hcdm
CD85h	LILRA2	hcdm
CD85j	LILRB1	hcdm
CD85k	LILRB4	hcdm
CD86	CD86	hcdm
CD87	PLAUR	hcdm
CD88	C5AR1	hcdm
CD89	FCAR	hcdm
CD90	THY1	hcdm
# mouse Thy1 alleles (CD90.1 = Thy1.1, CD90.2 = Thy1.2), as CD90.1 / CD90.2 read
Thy1.1	THY1	mouse
Thy1.2	THY1	mouse
CD91	LRP1	hcdm
CD92	SLC44A1	hcdm
CD93	CD93	hcdm
CD94	KLRD1	hcdm
CD95	FAS	hcdm
CD96	CD96	hcdm
CD97	ADGRE5	hcdm
CD98	SLC3A2	hcdm
CD99	CD99	hcdm
CD100	SEMA4D	hcdm
CD101	CD101	hcdm
CD102	ICAM2	hcdm
CD103	ITGAE	hcdm
CD104	ITGB4	hcdm
CD105	ENG	hcdm
CD106	VCAM1	hcdm
CD107a	LAMP1	hcdm
CD107b	LAMP2	hcdm
CD108	SEMA7A	hcdm
CD109	CD109	hcdm
CD110	MPL	hcdm
CD111	NECTIN1	hcdm
CD112	NECTIN2	hcdm
CD113	NECTIN3	hcdm
CD114	CSF3R	hcdm
CD115	CSF1R	hcdm
CD116	CSF2RA	hcdm
CD117	KIT	hcdm
CD118	LIFR	hcdm
CD119	IFNGR1	hcdm
CD120a	TNFRSF1A	hcdm
CD120b	TNFRSF1B	hcdm
CD121a	IL1R1	hcdm
CD121b	IL1R2	hcdm
CD122	IL2RB	hcdm
CD123	IL3RA	hcdm
CD124	IL4R	hcdm
CD125	IL5RA	hcdm
CD126	IL6R	hcdm
CD127	IL7R	hcdm
CD129	IL9R	hcdm
CD130	IL6ST	hcdm
CD131	CSF2RB	hcdm
CD132	IL2RG	hcdm
CD133	PROM1	hcdm
CD134	TNFRSF4	hcdm
CD135	FLT3	hcdm
CD136	MST1R	hcdm
CD137	TNFRSF9	hcdm
CD138	SDC1	hcdm
CD140a	PDGFRA	hcdm
CD140b	PDGFRB	hcdm
CD141	THBD	hcdm
CD142	F3	hcdm
CD143	ACE	hcdm
CD144	CDH5	hcdm
CD146	MCAM	hcdm
CD147	BSG	hcdm
CD148	PTPRJ	hcdm
CD150	SLAMF1	hcdm
CD151	CD151	hcdm
CD152	CTLA4	hcdm
CD153	TNFSF8	hcdm
CD154	CD40LG	hcdm
CD155	PVR	hcdm
CD156a	ADAM8	hcdm
CD156b	ADAM17	hcdm
CD157	BST1	hcdm
CD158	KIR2DL1	complex
CD158a	KIR2DL1	hcdm
CD158b	KIR2DL2	hcdm
CD158b1	KIR2DL2	hcdm
CD158b2	KIR2DL3	hcdm
CD158d	KIR2DL4	hcdm
CD158e	KIR3DL1	hcdm
CD158e1	KIR3DL1	hcdm
CD158e2	KIR3DS1	hcdm
CD158f	KIR2DL5A	hcdm
CD158g	KIR2DS5	hcdm
CD158h	KIR2DS1	hcdm
CD158i	KIR2DS4	hcdm
CD158j	KIR2DS2	hcdm
CD158k	KIR3DL2	hcdm
CD159a	KLRC1	hcdm
CD159c	KLRC2	hcdm
CD160	CD160	hcdm
CD161	KLRB1	hcdm
CD162	SELPLG	hcdm
CD163	CD163	hcdm
CD164	CD164	hcdm
CD166	ALCAM	hcdm
CD167a	DDR1	hcdm
CD168	HMMR	hcdm
CD169	SIGLEC1	hcdm
CD170	SIGLEC5	hcdm
CD171	L1CAM	hcdm
CD172a	SIRPA	hcdm
CD172b	SIRPB1	hcdm
CD172g	SIRPG	hcdm
CD173	FUT1	glycan
CD174	FUT3	glycan
CD177	CD177	hcdm
CD178	FASLG	hcdm
CD179a	VPREB1	hcdm
CD179b	IGLL1	hcdm
CD180	CD180	hcdm
CD181	CXCR1	hcdm
CD182	CXCR2	hcdm
CD183	CXCR3	hcdm
CD184	CXCR4	hcdm
CD185	CXCR5	hcdm
CD186	CXCR6	hcdm
CD191	CCR1	hcdm
CD192	CCR2	hcdm
CD193	CCR3	hcdm
CD194	CCR4	hcdm
CD195	CCR5	hcdm
CD196	CCR6	hcdm
CD197	CCR7	hcdm
CDw198	CCR8	hcdm
CD198	CCR8	hcdm
CDw199	CCR9	hcdm
CD199	CCR9	hcdm
CD200	CD200	hcdm
CD201	PROCR	hcdm
CD202b	TEK	hcdm
CD203c	ENPP3	hcdm
CD204	MSR1	hcdm
CD205	LY75	hcdm
CD206	MRC1	hcdm
CD207	CD207	hcdm
CD208	LAMP3	hcdm
CD209	CD209	hcdm
CD210	IL10RA	hcdm
CD212	IL12RB1	hcdm
CD213a1	IL13RA1	hcdm
CD213a2	IL13RA2	hcdm
CD215	IL15RA	hcdm
CD217	IL17RA	hcdm
CD218a	IL18R1	hcdm
CD218b	IL18RAP	hcdm
CD220	INSR	hcdm
CD221	IGF1R	hcdm
CD222	IGF2R	hcdm
CD223	LAG3	hcdm
CD224	GGT1	hcdm
CD225	IFITM1	hcdm
CD226	CD226	hcdm
CD227	MUC1	hcdm
CD228	MELTF	hcdm
CD229	LY9	hcdm
CD230	PRNP	hcdm
CD231	TSPAN7	hcdm
CD232	PLXNC1	hcdm
CD233	SLC4A1	hcdm
CD234	ACKR1	hcdm
CD235a	GYPA	hcdm
CD235b	GYPB	hcdm
CD236	GYPC	hcdm
CD238	KEL	hcdm
CD239	BCAM	hcdm
CD240CE	RHCE	hcdm
CD240D	RHD	hcdm
CD241	RHAG	hcdm
CD242	ICAM4	hcdm
CD243	ABCB1	hcdm
CD244	CD244	hcdm
CD246	ALK	hcdm
CD247	CD247	hcdm
CD248	CD248	hcdm
CD249	ENPEP	hcdm
CD252	TNFSF4	hcdm
CD253	TNFSF10	hcdm
CD254	TNFSF11	hcdm
CD256	TNFSF13	hcdm
CD257	TNFSF13B	hcdm
CD258	TNFSF14	hcdm
CD261	TNFRSF10A	hcdm
CD262	TNFRSF10B	hcdm
CD263	TNFRSF10C	hcdm
CD264	TNFRSF10D	hcdm
CD265	TNFRSF11A	hcdm
CD266	TNFRSF12A	hcdm
CD267	TNFRSF13B	hcdm
CD268	TNFRSF13C	hcdm
CD269	TNFRSF17	hcdm
CD270	TNFRSF14	hcdm
CD271	NGFR	hcdm
CD272	BTLA	hcdm
CD273	PDCD1LG2	hcdm
CD274	CD274	hcdm
CD275	ICOSLG	hcdm
CD276	CD276	hcdm
CD277	BTN3A1	hcdm
CD278	ICOS	hcdm
CD279	PDCD1	hcdm
CD280	MRC2	hcdm
CD281	TLR1	hcdm
CD282	TLR2	hcdm
CD283	TLR3	hcdm
CD284	TLR4	hcdm
CD286	TLR6	hcdm
CD288	TLR8	hcdm
CD289	TLR9	hcdm
CD290	TLR10	hcdm
CD292	BMPR1A	hcdm
CDw293	BMPR1B	hcdm
CD294	PTGDR2	hcdm
CD295	LEPR	hcdm
CD296	ART1	hcdm
CD297	ART4	hcdm
CD298	ATP1B3	hcdm
CD299	CLEC4M	hcdm
CD300a	CD300A	hcdm
CD300c	CD300C	hcdm
CD300e	CD300E	hcdm
CD301	CLEC10A	hcdm
CD302	CD302	hcdm
CD303	CLEC4C	hcdm
CD304	NRP1	hcdm
CD305	LAIR1	hcdm
CD306	LAIR2	hcdm
CD307a	FCRL1	hcdm
CD307b	FCRL2	hcdm
CD307c	FCRL3	hcdm
CD307d	FCRL4	hcdm
CD307e	FCRL5	hcdm
CD309	KDR	hcdm
CD312	ADGRE2	hcdm
CD314	KLRK1	hcdm
CD315	PTGFRN	hcdm
CD316	IGSF8	hcdm
CD317	BST2	hcdm
CD318	CDCP1	hcdm
CD319	SLAMF7	hcdm
CD320	CD320	hcdm
CD321	F11R	hcdm
CD322	JAM2	hcdm
CD324	CDH1	hcdm
CD325	CDH2	hcdm
CD326	EPCAM	hcdm
CD327	SIGLEC6	hcdm
CD328	SIGLEC7	hcdm
CD329	SIGLEC9	hcdm
CD331	FGFR1	hcdm
CD332	FGFR2	hcdm
CD333	FGFR3	hcdm
CD334	FGFR4	hcdm
CD335	NCR1	hcdm
CD336	NCR2	hcdm
CD337	NCR3	hcdm
CD338	ABCG2	hcdm
CD339	JAG1	hcdm
CD340	ERBB2	hcdm
CD344	FZD4	hcdm
CD349	FZD9	hcdm
CD350	FZD10	hcdm
CD351	FCAMR	hcdm
CD352	SLAMF6	hcdm
CD353	SLAMF8	hcdm
CD354	TREM1	hcdm
CD355	CRTAM	hcdm
CD357	TNFRSF18	hcdm
CD358	TNFRSF21	hcdm
CD360	IL21R	hcdm
CD361	EVI2B	hcdm
CD362	SDC2	hcdm
CD363	S1PR1	hcdm
CD364	PI16	hcdm
CD365	HAVCR1	hcdm
CD366	HAVCR2	hcdm
CD367	CLEC4A	hcdm
CD368	CLEC4D	hcdm
CD369	CLEC7A	hcdm
CD370	CLEC9A	hcdm
CD371	CLEC12A	hcdm
# ---- complexes and multi-gene names outside the CD list
HLA-DR	HLA-DRA	complex
MHCII	HLA-DRA	complex
HLA-DQ	HLA-DQA1	complex
HLA-DP	HLA-DPA1	complex
HLA-ABC	HLA-A	complex
HLA-A,B,C	HLA-A	complex
HLA-A-B-C	HLA-A	complex
HLA-A2	HLA-A	complex
# names the original tables give records of their own, which no other panel's name reaches (a pan-class II
# antibody, MICA/MICB, mast cell tryptase): the first gene listed, as for the names above
HLA-DR-DP-DQ	HLA-DRA	complex
CD66a-c-e	CEACAM1	complex
MICA-MICB	MICA	complex
MastCellTryptase	TPSAB1	complex
TCR	TRAC	complex
TCRab	TRAC	complex
TCRa/b	TRAC	complex
TCRalpha/beta	TRAC	complex
TCRgd	TRGC1	complex
TCRg/d	TRGC1	complex
TCRgamma/delta	TRGC1	complex
# the same receptors spelled out (TCR-alpha-beta, TCR_gamma_delta; the original tables give TCR-alpha-beta and
# TCR-gamma-delta ids of their own, which split one antigen in two across panels) and in Greek letters
TCRalphabeta	TRAC	complex
TCRgammadelta	TRGC1	complex
TCRαβ	TRAC	complex
TCRα/β	TRAC	complex
TCRγδ	TRGC1	complex
TCRγ/δ	TRGC1	complex
TCRa	TRAC	panel
TCRb	TRBC1	panel
TCRg	TRGC1	panel
TCRd	TRDC	panel
TCRalpha	TRAC	panel
TCRbeta	TRBC1	panel
TCRgamma	TRGC1	panel
TCRdelta	TRDC	panel
TCRα	TRAC	panel
TCRβ	TRBC1	panel
TCRγ	TRGC1	panel
TCRδ	TRDC	panel
TCRbetachain	TRBC1	panel
TCRβchain	TRBC1	panel
# ---- panel: non-CD names on TotalSeq / BioLegend / BD / ECCITE / REAP panels
PD1	PDCD1	panel
PDL1	CD274	panel
PDL2	PDCD1LG2	panel
B7H1	CD274	panel
B7H2	ICOSLG	panel
B7H3	CD276	panel
B7H4	VTCN1	panel
TIM3	HAVCR2	panel
TIM4	TIMD4	panel
LAG3	LAG3	panel
GITR	TNFRSF18	panel
41BB	TNFRSF9	panel
OX40	TNFRSF4	panel
ST2	IL1RL1	panel
CTLA4	CTLA4	panel
ICOS	ICOS	panel
TIGIT	TIGIT	panel
IgM	IGHM	panel
IgD	IGHD	panel
IgA	IGHA1	panel
IgE	IGHE	panel
# chains and ligands spelled out after a CD name (CD8 beta is CD8B, CD40 Ligand CD40LG)
CD8alpha	CD8A	panel
CD8beta	CD8B	panel
CD40Ligand	CD40LG	panel
CD30Ligand	TNFSF8	panel
CD27Ligand	CD70	panel
CD137Ligand	TNFSF9	panel
OX40Ligand	TNFSF4	panel
# anti-IgG Fc (B cells' surface IgG): the first subclass, as IgA is IGHA1
IgGFc	IGHG1	panel
Igkappa	IGKC	panel
IgkappaLightChain	IGKC	panel
Iglambda	IGLC2	panel
IglambdaLightChain	IGLC2	panel
IgKappaLight	IGKC	panel
IgLambdaLight	IGLC2	panel
# the light chains bare, as BD and flow panels write them (no gene is named Kappa or Lambda)
Kappa	IGKC	panel
KappaLightChain	IGKC	panel
IgLightChainKappa	IGKC	panel
Lambda	IGLC2	panel
LambdaLightChain	IGLC2	panel
IgLightChainLambda	IGLC2	panel
integrinb7	ITGB7	panel
LOX1	OLR1	panel
TCRVa7.2	TRAV1-2	panel
TCRValpha7.2	TRAV1-2	panel
TCRVd2	TRDV2	panel
TCRVdelta2	TRDV2	panel
TCRVg9	TRGV9	panel
TCRVgamma9	TRGV9	panel
TCRVg2	TRGV2	panel
TCRVd1	TRDV1	panel
# the invariant NKT receptor (V alpha 24-J alpha 18: TRAV10 joined to TRAJ18; 6B11 binds the junction) as its V gene
TCRVa24Ja18	TRAV10	panel
TCRVa24JaQ	TRAV10	panel
TCRVa24	TRAV10	panel
# V beta 13.1 in the Arden nomenclature that antibody catalogues keep is TRBV6-5 in IMGT's
TCRVb13.1	TRBV6-5	panel
TCRVb131	TRBV6-5	panel
# Hao et al. 2021's PBMC panel (Seurat v4 reference), whose names lost their Greek letters: TCR-1 is TCR gamma/delta
# (clone B1) and TCR-2 TCR alpha/beta (IP26), as the original tables' own TCR-1/TCR-2 records say; TCR-V-7.2 is
# V alpha 7.2, TCR-V-2 V delta 2, TCR-V-9 V gamma 9, TCR-V-24-J-18 V alpha 24-J alpha 18, Integrin-7 integrin beta 7
# (FIB504)
TCR-1	TRGC1	complex
TCR-2	TRAC	complex
TCR-V-7.2	TRAV1-2	panel
TCR-V-2	TRDV2	panel
TCR-V-9	TRGV9	panel
TCR-V-24-J-18	TRAV10	panel
Integrin-7	ITGB7	panel
FceRIa	FCER1A	panel
# antibodies to FcepsilonRI bind its alpha chain (AER-37, CRA-1); the alias table gives FCERI to the beta chain
FceRI	FCER1A	panel
FcepsilonRIalpha	FCER1A	panel
IL7Ralpha	IL7R	panel
IL7Ra	IL7R	panel
IL2Rbeta	IL2RB	panel
IL2Rb	IL2RB	panel
ckit	KIT	panel
PECAM	PECAM1	panel
EpCAM	EPCAM	panel
NKG2D	KLRK1	panel
NKG2A	KLRC1	panel
NKG2C	KLRC2	panel
NKp30	NCR3	panel
NKp44	NCR2	panel
NKp46	NCR1	panel
DNAM1	CD226	panel
2B4	CD244	panel
CRTH2	PTGDR2	panel
TSLPR	CRLF2	panel
BAFFR	TNFRSF13C	panel
BCMA	TNFRSF17	panel
TACI	TNFRSF13B	panel
Siglec8	SIGLEC8	panel
Siglec10	SIGLEC10	panel
Podoplanin	PDPN	panel
KLRG1	KLRG1	panel
CX3CR1	CX3CR1	panel
CLEC12A	CLEC12A	panel
Galectin9	LGALS9	panel
Galectin1	LGALS1	panel
Galectin3	LGALS3	panel
Mac2	LGALS3	panel
# intracellular antigens of CITE-seq and flow panels; TCF-1 is the T cell factor TCF7 (the previous symbol TCF1 is
# HNF1A's, which a panel named by gene symbol still reads: those panels try the gene rules first)
Ki67	MKI67	panel
GranzymeA	GZMA	panel
GranzymeB	GZMB	panel
GranzymeK	GZMK	panel
Perforin	PRF1	panel
TCF1	TCF7	panel
Tbet	TBX21	panel
Helios	IKZF2	panel
Blimp1	PRDM1	panel
RORgt	RORC	panel
# MHC class I (W6/32 binds HLA-A, -B and -C) as HLA-ABC; VE-cadherin as ECCITE-like panels shorten it
MHCI	HLA-A	complex
VECAD	CDH5	panel
# gp130 (IL6ST, CD130); the alias table gives GP130 to LRPPRC
GP130	IL6ST	panel
Langerin	CD207	panel
Podocalyxin	PODXL	panel
Cadherin11	CDH11	panel
VE-Cadherin	CDH5	panel
FRalpha	FOLR1	panel
FRbeta	FOLR2	panel
FolateReceptorAlpha	FOLR1	panel
FolateReceptorBeta	FOLR2	panel
HER2	ERBB2	panel
CD235ab	GYPA	complex
# ---- mouse: mouse antigen names -> the human ortholog of the gene bound
F4/80	ADGRE1	mouse
F480	ADGRE1	mouse
# CD301a / CD301b are Mgl1 / Mgl2, whose one human ortholog is CLEC10A (CD301); FR4 is folate receptor 4, Izumo1r
CD301a	CLEC10A	mouse
CD301b	CLEC10A	mouse
FR4	IZUMO1R	mouse
NK1.1	KLRB1	mouse
F4.80	ADGRE1	mouse
I-A/I-E	HLA-DRA	mouse
IA/IE	HLA-DRA	mouse
IAIE	HLA-DRA	mouse
CD8b.1	CD8B	mouse
CD8b.2	CD8B	mouse
MHCII(I-A/I-E)	HLA-DRA	mouse
# ---- rppa: MD Anderson RPPA antibody names (TCGA)
14-3-3_beta	YWHAB	rppa
14-3-3_epsilon	YWHAE	rppa
14-3-3_zeta	YWHAZ	rppa
4E-BP1	EIF4EBP1	rppa
53BP1	TP53BP1	rppa
A-Raf	ARAF	rppa
B-Raf	BRAF	rppa
C-Raf	RAF1	rppa
ACC	ACACA	rppa
ACC1	ACACA	rppa
Acetyl-a-Tubulin(Lys40)	TUBA1B	rppa
Acetyl-a-Tubulin-Lys40	TUBA1B	rppa
AMPK	PRKAA1	rppa
AMPK_alpha	PRKAA1	rppa
Akt	AKT1	rppa
Annexin_I	ANXA1	rppa
Annexin-1	ANXA1	rppa
Annexin_VII	ANXA7	rppa
AR	AR	rppa
ATM	ATM	rppa
Bak	BAK1	rppa
Bap1-c-4	BAP1	rppa
Bap1c-4	BAP1	rppa
Bax	BAX	rppa
Bcl-2	BCL2	rppa
Bcl-xL	BCL2L1	rppa
Beclin	BECN1	rppa
Bid	BID	rppa
Bim	BCL2L11	rppa
Caspase-3	CASP3	rppa
Caspase-7	CASP7	rppa
Caspase-8	CASP8	rppa
Caspase-9	CASP9	rppa
Caveolin-1	CAV1	rppa
Chk1	CHEK1	rppa
Chk2	CHEK2	rppa
Chromogranin-A-N-term	CHGA	rppa
cIAP	BIRC2	rppa
Claudin-7	CLDN7	rppa
Collagen_VI	COL6A1	rppa
Complex-II_subunit30	SDHB	rppa
Cyclin_B1	CCNB1	rppa
Cyclin_D1	CCND1	rppa
Cyclin_E1	CCNE1	rppa
Cyclin_E2	CCNE2	rppa
DJ-1	PARK7	rppa
Dvl3	DVL3	rppa
E-Cadherin	CDH1	rppa
N-Cadherin	CDH2	rppa
P-Cadherin	CDH3	rppa
EGFR	EGFR	rppa
ER-alpha	ESR1	rppa
ERK2	MAPK1	rppa
FOXO3a	FOXO3	rppa
Fibronectin	FN1	rppa
GSK3	GSK3B	rppa
GSK3-alpha-beta	GSK3B	rppa
GYG-Glycogenin1	GYG1	rppa
Heregulin	NRG1	rppa
HER3	ERBB3	rppa
HSP70	HSPA1A	rppa
JNK	MAPK8	rppa
JNK2	MAPK9	rppa
K-Ras	KRAS	rppa
Ku80	XRCC5	rppa
Lck	LCK	rppa
LCN2a	LCN2	rppa
LKB1	STK11	rppa
LBK1	STK11	rppa
MAPK	MAPK3	rppa
MEK1	MAP2K1	rppa
MIG-6	ERRFI1	rppa
Mre11	MRE11	rppa
Myosin-IIa	MYH9	rppa
Napsin-A	NAPSA	rppa
NF-kB-p65	RELA	rppa
Notch1	NOTCH1	rppa
Oxphos-complex-V_subunitb	ATP5PB	rppa
p16_INK4a	CDKN2A	rppa
p21	CDKN1A	rppa
p27	CDKN1B	rppa
p38	MAPK14	rppa
p38_MAPK	MAPK14	rppa
p53	TP53	rppa
p62-LCK-ligand	SQSTM1	rppa
p63	TP63	rppa
p70S6K	RPS6KB1	rppa
p90RSK	RPS6KA1	rppa
PAI-1	SERPINE1	rppa
PARP	PARP1	rppa
PARP-Ab-3	PARP1	rppa
Paxillin	PXN	rppa
PDK1	PDPK1	rppa
Pea-15	PEA15	rppa
PI3K-p110-alpha	PIK3CA	rppa
PI3K-p85	PIK3R1	rppa
PKC-alpha	PRKCA	rppa
PKC-delta	PRKCD	rppa
PKC-pan	PRKCB	rppa
PKC-pan_BetaII	PRKCB	rppa
PR	PGR	rppa
PRAS40	AKT1S1	rppa
PTEN	PTEN	rppa
PYGB-AB2	PYGB	rppa
Rab11	RAB11A	rppa
Rad50	RAD50	rppa
Raptor	RPTOR	rppa
Rb	RB1	rppa
S6	RPS6	rppa
SCD1	SCD	rppa
Shc	SHC1	rppa
Smad1	SMAD1	rppa
Smad3	SMAD3	rppa
Smad4	SMAD4	rppa
Src	SRC	rppa
STAT3	STAT3	rppa
STAT5-alpha	STAT5A	rppa
Stathmin	STMN1	rppa
Syk	SYK	rppa
Synaptophysin	SYP	rppa
# the Hippo co-activator; TAZ is also the previous HGNC symbol of tafazzin (TAFAZZIN), which RNA files mean by it
TAZ	WWTR1	rppa
Thymidilate-Synthase	TYMS	rppa
Transglutaminase	TGM2	rppa
TTF1	NKX2-1	rppa
Tuberin	TSC2	rppa
VEGFR2	KDR	rppa
XPB1	XBP1	rppa
YAP	YAP1	rppa
YB-1	YBX1	rppa
alpha-Catenin	CTNNA1	rppa
beta-Catenin	CTNNB1	rppa
c-Met	MET	rppa
c-Myc	MYC	rppa
eEF2	EEF2	rppa
eEF2K	EEF2K	rppa
eIF4E	EIF4E	rppa
mTOR	MTOR	rppa
"""


class AntibodyTarget(NamedTuple):
    """The gene an antibody name designates and the rule (see the module docstring) that says so."""

    name: str
    gene: str
    rule: str


# Greek letters as panels write them in Latin (TCR Valpha7.2 is Va7.2, Integrin beta7 integrinb7, Ig kappa Igkappa)
_GREEK_AS_LATIN = str.maketrans({"α": "a", "β": "b", "γ": "g", "δ": "d", "ε": "e", "κ": "kappa", "λ": "lambda"})


def antibody_key(name: str) -> str:
    """The form names are compared in: no spaces, hyphens or underscores, Greek letters as Latin ones, lower case."""
    return re.sub(r"[\s_\-]+", "", name).lower().translate(_GREEK_AS_LATIN)


def _parse(table: str) -> dict[str, AntibodyTarget]:
    targets: dict[str, AntibodyTarget] = {}
    for line in table.strip().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, gene, rule = line.split("\t")
        key = antibody_key(name)
        if key in targets and targets[key].gene != gene:
            raise ValueError(f"antibody table: {name!r} listed twice with different genes")
        targets[key] = AntibodyTarget(name, gene, rule)
    return targets


ANTIBODY_TARGETS: dict[str, AntibodyTarget] = _parse(_TABLE)


# mouse antigens whose gene has no human ortholog (keys as antibody_key writes them): no token means them
NO_HUMAN_GENE = frozenset(antibody_key(name) for name in (
    "Sca-1", "Sca1", "Ly-6A/E", "Ly-6A.2/Ly-6E.1", "Ly-6C", "Ly-6G", "Ly-6G/Ly-6C", "Ly-6G/C", "Gr-1", "Ter119",
    "TER-119", "Ly-76", "Siglec-F", "SiglecF", "Ly-6A", "Ly-6A_E", "Siglec-H", "SiglecH",
))
