#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <fcntl.h>
#include <stddef.h>
#include <string.h>
#include <errno.h>
#include <time.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <linux/seccomp.h>
#include <linux/filter.h>
#include <linux/audit.h>
#include <sys/prctl.h>
#define N 200000
#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS _IOW(0x21,4,__u64)
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP 1
#endif
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec*1e9+t.tv_nsec;}
/* Cost of seccomp user notification for teeheap's filter (docs/serving.md).
 * Usage: notif_cost MODE   (SYNC=1 in the environment sets SYNC_WAKE_UP)
 *  0 native, no filter
 *  3 allow-all filter (cost of having any filter)
 *  1 teeheap's filter: ioctl type 'H'/'b'/0xa4 and MAP_SHARED file mmap go to
 *    the supervisor (ioctl answered with 42; mmap: pidfd_getfd+fstat, CONTINUE)
 *  2 as 1, plus every openat sent to the supervisor and CONTINUEd
 *    (what path interception would cost). */
static int install(int mode){
  struct sock_filter f[]={
    BPF_STMT(BPF_LD|BPF_W|BPF_ABS,offsetof(struct seccomp_data,arch)),
    BPF_JUMP(BPF_JMP|BPF_JEQ|BPF_K,AUDIT_ARCH_X86_64,1,0),
    BPF_STMT(BPF_RET|BPF_K,SECCOMP_RET_ALLOW),
    BPF_STMT(BPF_LD|BPF_W|BPF_ABS,offsetof(struct seccomp_data,nr)),
    BPF_JUMP(BPF_JMP|BPF_JEQ|BPF_K,SYS_ioctl,0,6),
    BPF_STMT(BPF_LD|BPF_W|BPF_ABS,offsetof(struct seccomp_data,args[1])),
    BPF_STMT(BPF_ALU|BPF_RSH|BPF_K,8),
    BPF_STMT(BPF_ALU|BPF_AND|BPF_K,0xff),
    BPF_JUMP(BPF_JMP|BPF_JEQ|BPF_K,'H',8,0),
    BPF_JUMP(BPF_JMP|BPF_JEQ|BPF_K,'b',7,0),
    BPF_JUMP(BPF_JMP|BPF_JEQ|BPF_K,0xa4,6,5),
    BPF_JUMP(BPF_JMP|BPF_JEQ|BPF_K,SYS_mmap,0,3),
    BPF_STMT(BPF_LD|BPF_W|BPF_ABS,offsetof(struct seccomp_data,args[3])),
    BPF_JUMP(BPF_JMP|BPF_JSET|BPF_K,MAP_ANONYMOUS,2,0),
    BPF_JUMP(BPF_JMP|BPF_JSET|BPF_K,1,2,1), /* MAP_SHARED or SHARED_VALIDATE have bit0 */
    BPF_JUMP(BPF_JMP|BPF_JEQ|BPF_K,mode==2?SYS_openat:0xfffff,1,0),
    BPF_STMT(BPF_RET|BPF_K,SECCOMP_RET_ALLOW),
    BPF_STMT(BPF_RET|BPF_K,SECCOMP_RET_USER_NOTIF),
  };
  struct sock_fprog p={sizeof f/sizeof f[0],f};
  if(mode==3){ p.len=1; f[0]=(struct sock_filter)BPF_STMT(BPF_RET|BPF_K,SECCOMP_RET_ALLOW);}
  prctl(PR_SET_NO_NEW_PRIVS,1,0,0,0);
  int fd=syscall(SYS_seccomp,SECCOMP_SET_MODE_FILTER,SECCOMP_FILTER_FLAG_NEW_LISTENER|SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,&p);
  if(fd<0){perror("seccomp");exit(1);} return fd;
}
static int lfd; static int tpid;
static void* sup(void*x){
  struct seccomp_notif*req=calloc(1,4096); struct seccomp_notif_resp*resp=calloc(1,4096);
  for(;;){ memset(req,0,sizeof*req);
    if(ioctl(lfd,SECCOMP_IOCTL_NOTIF_RECV,req)<0){ if(errno==EINTR)continue; return 0;}
    resp->id=req->id; resp->error=0; resp->val=0; resp->flags=0;
    if(req->data.nr==SYS_ioctl){ resp->val=42; }
    else if(req->data.nr==SYS_mmap){ /* identify the fd */
      int pfd=syscall(SYS_pidfd_open,req->pid,0); int g=syscall(SYS_pidfd_getfd,pfd,(int)req->data.args[4],0);
      struct stat st; fstat(g,&st); close(g); close(pfd); resp->flags=SECCOMP_USER_NOTIF_FLAG_CONTINUE; }
    else resp->flags=SECCOMP_USER_NOTIF_FLAG_CONTINUE;
    ioctl(lfd,SECCOMP_IOCTL_NOTIF_SEND,resp);
  }
}
static void work(const char*tag){
  int pp[2]; pipe(pp); int v; double t;
  t=now(); for(int i=0;i<N;i++){int f=open("/tmp/exp/bench.c",O_RDONLY|O_CLOEXEC); close(f);} printf("%-10s open+close      %7.0f ns\n",tag,(now()-t)/N);
  t=now(); for(int i=0;i<N;i++) ioctl(pp[0],FIONREAD,&v); printf("%-10s ioctl FIONREAD  %7.0f ns\n",tag,(now()-t)/N);
  t=now(); for(int i=0;i<N;i++) getppid(); printf("%-10s getppid         %7.0f ns\n",tag,(now()-t)/N);
  t=now(); for(int i=0;i<N;i++) v=ioctl(pp[0],_IOWR('H',0,24),0); printf("%-10s ioctl 'H'(=%d)  %7.0f ns\n",tag,v,(now()-t)/N);
  int m=memfd_create("x",0); ftruncate(m,4096);
  t=now(); for(int i=0;i<N/4;i++){void*p=mmap(0,4096,PROT_READ|PROT_WRITE,MAP_SHARED,m,0); munmap(p,4096);} printf("%-10s mmap shared+unmap %5.0f ns\n",tag,(now()-t)/(N/4));
  t=now(); for(int i=0;i<N/4;i++){void*p=mmap(0,4096,PROT_READ|PROT_WRITE,MAP_PRIVATE,m,0); munmap(p,4096);} printf("%-10s mmap priv+unmap %7.0f ns\n",tag,(now()-t)/(N/4));
  fflush(stdout);
}
int main(int argc,char**argv){
  int mode=atoi(argv[1]);
  if(mode==0){ work("native"); return 0;}
  int sv[2]; socketpair(AF_UNIX,SOCK_STREAM,0,sv);
  pid_t c=fork();
  if(c==0){ int l=install(mode); /* send listener */
    char b=0; struct iovec io={&b,1}; char cm[CMSG_SPACE(4)]; struct msghdr mh={0}; mh.msg_iov=&io; mh.msg_iovlen=1; mh.msg_control=cm; mh.msg_controllen=sizeof cm;
    struct cmsghdr*ch=CMSG_FIRSTHDR(&mh); ch->cmsg_level=SOL_SOCKET; ch->cmsg_type=SCM_RIGHTS; ch->cmsg_len=CMSG_LEN(4); memcpy(CMSG_DATA(ch),&l,4);
    sendmsg(sv[1],&mh,0); close(l); read(sv[1],&b,1);
    work(mode==1?"filter":mode==3?"allowall":"filter+open"); _exit(0);}
  char b; struct iovec io={&b,1}; char cm[CMSG_SPACE(4)]; struct msghdr mh={0}; mh.msg_iov=&io; mh.msg_iovlen=1; mh.msg_control=cm; mh.msg_controllen=sizeof cm;
  recvmsg(sv[0],&mh,0); memcpy(&lfd,CMSG_DATA(CMSG_FIRSTHDR(&mh)),4); tpid=c;
  if(getenv("SYNC")){ if(ioctl(lfd,SECCOMP_IOCTL_NOTIF_SET_FLAGS,SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP,0)<0) perror("sync");}
  pthread_t th; pthread_create(&th,0,sup,0); write(sv[0],"g",1);
  waitpid(c,0,0); return 0;
}
