# scripts/emulate_scan_bwd_warp.py — float64 emulation of the warp-chain selective-scan backward ALGORITHM
# (cuda/selective_scan_bwd.cu, bwd_warp_body: 32 lanes x K items per chunk, chunks in reverse, forward scan seeded
# from the saved carries, the adjoint as X -> P X + Q per lane with a reverse warp scan, X carried to the chunk on the
# left) against the direct recurrences. It checks the math, not the CUDA code. Run: python3 scripts/emulate_scan_bwd_warp.py
import numpy as np
rng=np.random.default_rng(1)
L=3001; N=3; K=8; LANES=32; CH=LANES*K
dt=rng.uniform(0.02,0.5,L); u=rng.standard_normal(L); A=-rng.uniform(0.5,4,N)
B=rng.standard_normal((N,L)); C=rng.standard_normal((N,L)); dy=rng.standard_normal(L)
# reference: forward states, adjoint
a=np.exp(dt[None,:]*A[:,None]); b=dt*u*B
h=np.zeros((N,L)); hp=0
for l in range(L):
    hp=a[:,l]*hp+b[:,l]; h[:,l]=hp
g=np.zeros((N,L)); gn=np.zeros(N)
for l in range(L-1,-1,-1):
    gn=C[:,l]*dy[l]+(a[:,l+1]*gn if l+1<L else 0); g[:,l]=gn
hprev=np.concatenate([np.zeros((N,1)),h[:,:-1]],1)
ah=a*hprev
ref_du=(g*dt*B).sum(0); ref_ddt=(g*(B*u+A[:,None]*ah)).sum(0); ref_dA=(g*dt*ah).sum(1)
ref_dB=g*dt*u; ref_dC=dy*h
# carries every CH positions: state at end of chunk c-1
nch=(L+CH-1)//CH
def pad(x): 
    y=np.zeros(nch*CH); y[:L]=x; return y
dtp,up,dyp=pad(dt),pad(u),pad(dy)
Bp=np.zeros((N,nch*CH)); Bp[:,:L]=B; Cp=np.zeros((N,nch*CH)); Cp[:,:L]=C
carry=np.zeros((nch,N))
for c in range(nch):
    e=min((c+1)*CH,L)-1; carry[c]=h[:,e]
du=np.zeros(nch*CH); ddt=np.zeros(nch*CH); dA=np.zeros(N); dB=np.zeros((N,nch*CH)); dC=np.zeros((N,nch*CH))
X=np.zeros(N)
def scan_fwd(P,Q):  # inclusive, lane j = f_j o ... o f_0
    P=P.copy();Q=Q.copy()
    for j in range(1,LANES): Q[j]=P[j]*Q[j-1]+Q[j]; P[j]=P[j]*P[j-1]
    return P,Q
def scan_rev(P,Q):  # inclusive, lane j = f_j o ... o f_31
    P=P.copy();Q=Q.copy()
    for j in range(LANES-2,-1,-1): Q[j]=P[j]*Q[j+1]+Q[j]; P[j]=P[j]*P[j+1]
    return P,Q
for c in range(nch-1,-1,-1):
    sl=slice(c*CH,(c+1)*CH)
    dtc=dtp[sl].reshape(LANES,K); uc=up[sl].reshape(LANES,K); dyc=dyp[sl].reshape(LANES,K)
    for n in range(N):
        Bc=Bp[n,sl].reshape(LANES,K); Cc=Cp[n,sl].reshape(LANES,K)
        ac=np.exp(dtc*A[n]); bb=dtc*uc*Bc
        P=np.exp(dtc.sum(1)*A[n])
        fb=bb[:,0].copy()
        for i in range(1,K): fb=ac[:,i]*fb+bb[:,i]
        h0=carry[c-1,n] if c>0 else 0.0
        Pi,Qi=scan_fwd(P,fb)
        hin=np.where(np.arange(LANES)==0,h0,np.roll(Pi,1)*h0+np.roll(Qi,1))
        ahc=np.zeros((LANES,K)); hh=hin.copy()
        for i in range(K): ahc[:,i]=ac[:,i]*hh; hh=ahc[:,i]+bb[:,i]
        q=Cc[:,K-1]*dyc[:,K-1]
        for i in range(K-2,-1,-1): q=ac[:,i+1]*q+Cc[:,i]*dyc[:,i]
        Ri,Si=scan_rev(P,ac[:,0]*q)
        Xl=np.where(np.arange(LANES)==LANES-1,X[n],np.roll(Ri,-1)*X[n]+np.roll(Si,-1))
        gg=np.zeros(LANES)
        dAt=0
        for i in range(K-1,-1,-1):
            gg=(Xl+Cc[:,i]*dyc[:,i]) if i==K-1 else ac[:,i+1]*gg+Cc[:,i]*dyc[:,i]
            pos=c*CH+np.arange(LANES)*K+i
            gdt=gg*dtc[:,i]
            du[pos]+=gdt*Bc[:,i]; ddt[pos]+=gg*(Bc[:,i]*uc[:,i]+A[n]*ahc[:,i]); dAt+=(gdt*ahc[:,i]).sum()
            dB[n,pos]+=gg*dtc[:,i]*uc[:,i]; dC[n,pos]+=dyc[:,i]*(ahc[:,i]+bb[:,i])
        X[n]=ac[0,0]*gg[0]; dA[n]+=dAt
rel=lambda x,y: np.linalg.norm(x-y)/np.linalg.norm(y)
print('du',rel(du[:L],ref_du),'ddt',rel(ddt[:L],ref_ddt),'dA',rel(dA,ref_dA),'dB',rel(dB[:,:L],ref_dB),'dC',rel(dC[:,:L],ref_dC))
